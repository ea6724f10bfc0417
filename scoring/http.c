/* http.c -- the HTTP API: the server, routing, authentication, and the
 * reads behind the analysts' pages (see http.h; the pages themselves are
 * rendered by http_pages.c).
 *
 * Design: libmicrohttpd with an internal thread pool; a GET is answered on
 * its first call (a body is refused), a POST once its body is in (up to
 * RS_HTTP_POST_MAX bytes, kept in per-request state freed by the
 * completion callback).  The URL reaches the handler still percent-encoded
 * (a no-op unescape callback): the path is split on "/" first and each
 * segment decoded on its own, so an id may hold "/" or "?".  Query values
 * are decoded the same way.
 *
 * Redis: one rs_sink_redis_t per server thread, created on first use and
 * kept in thread-specific data whose destructor closes it when
 * MHD_stop_daemon joins the thread.  Lists (queue, entity page, a case's
 * history) read an index newest first, then the records and outcomes of a
 * chunk with two MGETs; filters run on the decoded records, at most
 * RS_HTTP_SCAN_MAX index entries per request, and pages continue from a
 * (time, id) cursor.  Nothing is shared between threads but the immutable
 * configuration, the route table and the label sender (under a mutex).
 *
 * The label action claims the outcome in Redis (SET NX), hands the Label
 * to the sender (a Kafka producer in the CLI) and undoes the claim if the
 * sender fails.  It takes the token only from the Authorization header and
 * only a JSON body, so a cross-site form cannot label.
 */
#include "scoring/http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#define RS_HTTP_MAX_ROUTES 8
#define RS_HTTP_URL_MAX 8192
#define RS_HTTP_LIMIT_DEF 100
#define RS_HTTP_LIMIT_MAX 1000
#define RS_HTTP_POST_MAX 4096   /* body of a label action              */



/* ----------------------------------------------------------------- config */

static const rs_conf_field_t rs_http_fields[] = {
    {"enabled", RS_CONF_BOOL, "false", offsetof(rs_http_conf_t, enabled), 0,
     "start the HTTP API inside `serve` (`riskstream api` always serves)",
     NULL, 0, 0},
    {"bind", RS_CONF_STRING, "127.0.0.1", offsetof(rs_http_conf_t, bind),
     sizeof(((rs_http_conf_t *)0)->bind),
     "listen address, an IPv4 or IPv6 literal", NULL, 0, 0},
    {"port", RS_CONF_INT, "8080", offsetof(rs_http_conf_t, port), 0,
     "listen port; 0 = ephemeral (the bound port is printed)", NULL, 0,
     65535},
    {"token_env", RS_CONF_STRING, "", offsetof(rs_http_conf_t, token_env),
     sizeof(((rs_http_conf_t *)0)->token_env),
     "environment variable holding the bearer token; empty = no auth", NULL,
     0, 0},
    {"threads", RS_CONF_INT, "4", offsetof(rs_http_conf_t, threads), 0,
     "server threads, each with its own Redis connection", NULL, 1, 64},
};

const rs_conf_field_t *rs_http_conf_fields(int *n) {
    *n = (int)RS_ARRAY_LEN(rs_http_fields);
    return rs_http_fields;
}

void rs_http_conf_section(rs_conf_section_t *sec, rs_http_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = RS_HTTP_CONF_SECTION;
    sec->desc = "HTTP API: score lookups and the per-decision page";
    sec->fields = rs_http_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_http_fields);
    sec->base = conf;
}

void rs_http_conf_init(rs_http_conf_t *conf) {
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_http_conf_section(&sec, conf);
    rs_conf_t *reg = rs_conf_new();
    if (rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("http", "config table: %s", errstr);
    rs_conf_destroy(reg);
}

/* ----------------------------------------------------------------- buffer */

void rs_http_buf_append(rs_http_buf_t *b, const char *s, size_t len) {
    if (b->overflow) return;
    if (b->len + len + 1 > RS_HTTP_BODY_MAX) {
        b->overflow = 1;
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            rs_error("http", "out of memory (%zu bytes)", cap);
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void rs_http_buf_printf(rs_http_buf_t *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        rs_http_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rs_http_buf_append(b, big, (size_t)n);
    free(big);
}

void rs_http_buf_html(rs_http_buf_t *b, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        rs_http_buf_append(b, run, (size_t)(s - run));
        rs_http_buf_append(b, rep, strlen(rep));
        run = s + 1;
    }
    rs_http_buf_append(b, run, (size_t)(s - run));
}

void rs_http_buf_jstr(rs_http_buf_t *b, const char *s) {
    RS_HTTP_LIT(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rs_http_buf_append(b, e, 2);
        } else if (c < 0x20) {
            rs_http_buf_printf(b, "\\u%04x", c);
        } else {
            rs_http_buf_append(b, (const char *)&c, 1);
        }
    }
    RS_HTTP_LIT(b, "\"");
}

void rs_http_buf_url(rs_http_buf_t *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            rs_http_buf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rs_http_buf_append(b, e, 3);
        }
    }
}

const char *rs_http_decision_colour(rs_decision_t d) {
    switch (d) {
    case RS_DECISION_APPROVE: return "#2b8a3e";
    case RS_DECISION_REVIEW: return "#e67700";
    case RS_DECISION_DECLINE: return "#c92a2a";
    case RS_DECISION_ALERT: return "#7048e8";
    default: return "#666666";
    }
}

rs_http_buf_t *rs_http_buf_new(void) { return rs_calloc(1, sizeof(rs_http_buf_t)); }
const char *rs_http_buf_data(const rs_http_buf_t *b) { return b->p ? b->p : ""; }
size_t rs_http_buf_len(const rs_http_buf_t *b) { return b->len; }
void rs_http_buf_destroy(rs_http_buf_t *b) {
    if (!b) return;
    free(b->p);
    rs_free(b);
}

/* ------------------------------------------------------------------ utils */

static int rs_http_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode src[0..len) into out[size] ('+' as space if plus).
 * -1 for a bad escape, an encoded NUL or no room. */
static int rs_http_pct_decode(const char *src, size_t len, int plus, char *out,
                              size_t size) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int h = rs_http_hex(src[i + 1]), l = rs_http_hex(src[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0) return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (o + 1 >= size) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

static int rs_http_all_digits(const char *s) {
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return 1;
}

int rs_http_since_parse(const char *s, int64_t now_ms, int64_t *out_ms) {
    if (!s || !*s) return -1;
    int digits = rs_http_all_digits(s);
    int64_t d;
    if (!digits && rs_duration_parse(s, &d) == 0) {
        *out_ms = now_ms - d;
        return 0;
    }
    return rs_time_parse(s, strlen(s), out_ms);
}

/* Constant-time (in the length of `secret`) comparison. */
static int rs_http_ct_eq(const char *given, size_t glen, const char *secret,
                         size_t slen) {
    unsigned char d = (unsigned char)(glen != slen);
    for (size_t i = 0; i < slen; i++)
        d |= (unsigned char)((i < glen ? given[i] : 0) ^ secret[i]);
    return d == 0;
}

const char *rs_http_num(char *buf, size_t size, const char *fmt,
                        double v) {
    if (!isfinite(v)) return "n/a";
    snprintf(buf, size, fmt, v);
    return buf;
}

void rs_http_ago(int64_t ms, char *buf, size_t size) {
    if (ms < 0) ms = -ms;
    int64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;
    /* two units, the second dropped when zero */
    int64_t hi = d ? d : h ? h : m, lo = d ? h % 24 : h ? m % 60 : s % 60;
    const char *uh = d ? "d" : h ? "h" : "m", *ul = d ? "h" : h ? "m" : "s";
    if (m > 0 && lo)
        snprintf(buf, size, "%" PRId64 "%s%" PRId64 "%s", hi, uh, lo, ul);
    else if (m > 0) snprintf(buf, size, "%" PRId64 "%s", hi, uh);
    else if (s > 0) snprintf(buf, size, "%" PRId64 "s", s);
    else snprintf(buf, size, "%" PRId64 "ms", ms);
}

/* --------------------------------------------------------------- outcomes */

int rs_http_outcome_parse(const char *json, size_t len, rs_http_outcome_t *o) {
    json_error_t je;
    memset(o, 0, sizeof(*o));
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) return -1;
    json_t *v = json_object_get(root, "outcome");
    int ok = json_is_string(v) && (!strcmp(json_string_value(v), "fraud") ||
                                   !strcmp(json_string_value(v), "genuine"));
    if (ok) {
        rs_strlcpy(o->outcome, json_string_value(v), sizeof(o->outcome));
        v = json_object_get(root, "value");
        o->value = json_is_number(v) ? json_number_value(v)
                                     : !strcmp(o->outcome, "fraud");
        v = json_object_get(root, "label_time_ms");
        if (json_is_integer(v)) o->at_ms = json_integer_value(v);
        v = json_object_get(root, "analyst");
        if (json_is_string(v))
            rs_strlcpy(o->analyst, json_string_value(v), sizeof(o->analyst));
        v = json_object_get(root, "note");
        if (json_is_string(v))
            rs_strlcpy(o->note, json_string_value(v), sizeof(o->note));
        v = json_object_get(root, "topic");
        if (json_is_string(v))
            rs_strlcpy(o->topic, json_string_value(v), sizeof(o->topic));
        o->present = 1;
    }
    json_decref(root);
    return ok ? 0 : -1;
}

void rs_http_outcome_json(const rs_http_outcome_t *o, const char *event_id,
                          const char *entity_id, rs_http_buf_t *b) {
    RS_HTTP_LIT(b, "{\"event_id\":");
    rs_http_buf_jstr(b, event_id);
    RS_HTTP_LIT(b, ",\"entity_id\":");
    rs_http_buf_jstr(b, entity_id);
    RS_HTTP_LIT(b, ",\"outcome\":");
    rs_http_buf_jstr(b, o->outcome);
    rs_http_buf_printf(b, ",\"value\":%.0f,\"label_time_ms\":%" PRId64
                          ",\"analyst\":",
                       o->value, o->at_ms);
    rs_http_buf_jstr(b, o->analyst);
    RS_HTTP_LIT(b, ",\"note\":");
    rs_http_buf_jstr(b, o->note);
    RS_HTTP_LIT(b, ",\"topic\":");
    rs_http_buf_jstr(b, o->topic);
    RS_HTTP_LIT(b, "}");
}

/* ----------------------------------------------------------------- server */

typedef struct rs_http_route_s {
    char prefix[128];
    rs_http_route_fn fn;
    void *opaque;
    int post;                  /* 1: POST route, 0: GET/HEAD            */
} rs_http_route_t;

struct rs_http_s {
    rs_http_conf_t conf;
    rs_redis_conf_t redis;
    struct MHD_Daemon *mhd;
    int port;
    char token[256];           /* "" = no auth                          */
    size_t token_len;
    pthread_key_t tls;         /* rs_sink_redis_t * of a server thread  */
    int tls_ok;
    pthread_mutex_t lock;      /* routes, the label sender              */
    int nroutes;
    rs_http_route_t routes[RS_HTTP_MAX_ROUTES];
    /* the label action (NULL: off), under `lock` */
    rs_http_label_fn label_fn;
    void *label_opaque;
    char label_topic[128];
};

/* One request: its answer, and the body of a POST. */
typedef struct rs_http_req_s {
    int post;                  /* a POST whose body is being read       */
    size_t len;                /* body bytes kept                        */
    int too_big;               /* more than RS_HTTP_POST_MAX arrived     */
    char body[RS_HTTP_POST_MAX + 1];
} rs_http_req_t;

/* What a route answers besides its body. */
typedef struct rs_http_out_s {
    const char *ctype;
    char location[RS_HTTP_URL_MAX + 64]; /* 303 target, "" if none      */
} rs_http_out_t;

static void rs_http_tls_free(void *p) { rs_sink_redis_destroy(p); }

/* This thread's Redis connection, created on first use.  @locality a
 * server thread */
static rs_sink_redis_t *rs_http_sink(rs_http_t *http, char *errstr,
                                     size_t errstr_size) {
    rs_sink_redis_t *sink = pthread_getspecific(http->tls);
    if (sink) return sink;
    sink = rs_sink_redis_new(&http->redis, errstr, errstr_size);
    if (sink) pthread_setspecific(http->tls, sink);
    return sink;
}

/* Every Redis call of a request goes through one of these: the thread's
 * connection (created on first use), tried twice when the connection is
 * lost (the sink reconnects on its next call). */
#define RS_HTTP_REDIS(http, errstr, call)                                    \
    do {                                                                     \
        err = RS_ERR_IO;                                                     \
        for (int attempt_ = 0; attempt_ < 2 && err == RS_ERR_IO;             \
             attempt_++) {                                                   \
            rs_sink_redis_t *sink =                                          \
                rs_http_sink((http), (errstr), sizeof(errstr));              \
            if (!sink) break;                                                \
            err = (call);                                                    \
        }                                                                    \
    } while (0)

static rs_err_t rs_http_get_score(rs_http_t *http, const char *id, char *json,
                                  size_t size, char *errstr,
                                  size_t errstr_size) {
    rs_err_t err = RS_ERR_IO;
    for (int attempt = 0; attempt < 2 && err == RS_ERR_IO; attempt++) {
        rs_sink_redis_t *sink = rs_http_sink(http, errstr, errstr_size);
        if (!sink) return RS_ERR_IO;
        err = rs_sink_redis_get_score(sink, id, json, size, errstr,
                                      errstr_size);
    }
    return err;
}

static int rs_http_error(rs_http_buf_t *b, const char **ctype, int status,
                         const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->len = 0;
    b->overflow = 0;
    RS_HTTP_LIT(b, "{\"error\":");
    rs_http_buf_jstr(b, msg);
    RS_HTTP_LIT(b, "}\n");
    *ctype = RS_CT_JSON;
    return status;
}

/* Status for a failed Redis call. */
static int rs_http_redis_error(rs_http_buf_t *b, const char **ctype,
                               rs_err_t err, const char *errstr) {
    rs_warn("http", "redis: %s", errstr);
    return rs_http_error(b, ctype, err == RS_ERR_IO ? 503 : 500,
                         "score store unavailable (%s)", rs_err_str(err));
}

/* A query argument, percent-decoded into out[size] ("" if absent).
 * -1 if it does not decode or fit. */
static int rs_http_arg(struct MHD_Connection *conn, const char *name,
                       char *out, size_t size) {
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                name);
    out[0] = '\0';
    if (!v || !*v) return 0;
    if (rs_http_pct_decode(v, strlen(v), 1, out, size) < 0) return -1;
    /* blanks around a typed value are never meant */
    size_t n = strlen(out), i = 0;
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t')) out[--n] = '\0';
    while (out[i] == ' ' || out[i] == '\t') i++;
    if (i) memmove(out, out + i, n - i + 1);
    return 0;
}

/* --------------------------------------------------------- loading rows */

/* Records (and outcomes) of a list of ids, read with two MGETs.  Rows
 * whose record is gone (expired) have sc[i] == NULL. */
typedef struct rs_http_rows_s {
    int n;
    rs_score_t **sc;           /* [n] malloc'd each, or NULL           */
    char **raw;                /* [n] the stored JSON (keep_raw)       */
    rs_http_outcome_t *out;    /* [n]                                  */
    int keep_raw;
    char errstr[256];          /* first record that did not decode     */
} rs_http_rows_t;

static void rs_http_rows_score_cb(void *opaque, int i, const char *val,
                                  size_t len) {
    rs_http_rows_t *r = opaque;
    if (!val) return;
    rs_score_t *sc = malloc(sizeof(*sc));
    char es[256];
    if (!sc) return;
    if (rs_score_from_json(val, len, sc, es, sizeof(es)) != RS_OK) {
        if (!r->errstr[0]) snprintf(r->errstr, sizeof(r->errstr), "%s", es);
        free(sc);
        return;
    }
    r->sc[i] = sc;
    if (r->keep_raw) r->raw[i] = strndup(val, len);
}

static void rs_http_rows_out_cb(void *opaque, int i, const char *val,
                                size_t len) {
    rs_http_rows_t *r = opaque;
    if (val) rs_http_outcome_parse(val, len, &r->out[i]);
}

static void rs_http_rows_free(rs_http_rows_t *r) {
    for (int i = 0; i < r->n; i++) {
        if (r->sc) free(r->sc[i]);
        if (r->raw) free(r->raw[i]);
    }
    free(r->sc);
    free(r->raw);
    free(r->out);
    memset(r, 0, sizeof(*r));
}

static rs_err_t rs_http_rows_load(rs_http_t *http, const char *const *ids,
                                  int n, int keep_raw, rs_http_rows_t *r,
                                  char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    memset(r, 0, sizeof(*r));
    r->n = n;
    r->keep_raw = keep_raw;
    r->sc = calloc((size_t)RS_MAX(n, 1), sizeof(*r->sc));
    r->raw = calloc((size_t)RS_MAX(n, 1), sizeof(*r->raw));
    r->out = calloc((size_t)RS_MAX(n, 1), sizeof(*r->out));
    if (!r->sc || !r->raw || !r->out)
        return rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "out of memory");
    if (n == 0) return RS_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        rs_sink_redis_t *sink = rs_http_sink(http, errstr, errstr_size);
        if (!sink) return RS_ERR_IO;
        err = rs_sink_redis_mget(sink, RS_REDIS_SCORE, ids, n,
                                 rs_http_rows_score_cb, r, errstr,
                                 errstr_size);
        if (err == RS_OK)
            err = rs_sink_redis_mget(sink, RS_REDIS_OUTCOME, ids, n,
                                     rs_http_rows_out_cb, r, errstr,
                                     errstr_size);
        if (err != RS_ERR_IO) break;
    }
    if (r->errstr[0])
        rs_warn("http", "a stored record does not decode: %s", r->errstr);
    return err;
}

/* ------------------------------------------------------------- the scan */

#define RS_HTTP_SCAN_CHUNK 100     /* index entries per round trip    */
#define RS_HTTP_SCAN_MAX 5000      /* entries examined per request    */
#define RS_HTTP_PAGE_DEF 50
#define RS_HTTP_PAGE_MAX 500

/* A page of the alert index (or of one entity's index), newest first,
 * filtered, from a cursor. */
typedef struct rs_http_scan_s {
    /* in */
    const char *entity;        /* read this entity's index, or NULL     */
    int alerts_only;           /* keep review/decline/alert only        */
    unsigned dec_mask;         /* 1 << decision; 0 = any                */
    int64_t since, until;      /* event time bounds (inclusive)         */
    double min_score;          /* -1: none                              */
    int status;                /* 0 any, 1 open, 2 labelled             */
    int limit;
    int has_cur;               /* continue after (cur_t, cur_id)        */
    int64_t cur_t;
    char cur_id[RS_ID_MAX];
    int keep_raw;
    /* out */
    rs_score_t **rows;         /* [limit] owned                          */
    char **raw;                /* [limit] owned (keep_raw)               */
    rs_http_outcome_t *outs;   /* [limit]                                */
    int n, more, capped, scanned;
    int64_t next_t;
    char next_id[RS_ID_MAX];
} rs_http_scan_t;

static void rs_http_scan_free(rs_http_scan_t *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->rows[i]);
        if (s->raw) free(s->raw[i]);
    }
    free(s->rows);
    free(s->raw);
    free(s->outs);
    s->rows = NULL;
    s->raw = NULL;
    s->outs = NULL;
    s->n = 0;
}

static rs_err_t rs_http_scan(rs_http_t *http, rs_http_scan_t *s, char *errstr,
                             size_t errstr_size) {
    rs_redis_hit_t *hits = malloc(RS_HTTP_SCAN_CHUNK * sizeof(*hits));
    s->rows = calloc((size_t)s->limit, sizeof(*s->rows));
    s->raw = calloc((size_t)s->limit, sizeof(*s->raw));
    s->outs = calloc((size_t)s->limit, sizeof(*s->outs));
    s->n = s->more = s->capped = s->scanned = 0;
    rs_err_t err = RS_OK;
    if (!hits || !s->rows || !s->raw || !s->outs) {
        free(hits);
        return rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "out of memory");
    }
    int64_t max_ms = s->has_cur ? RS_MIN(s->cur_t, s->until) : s->until;
    int offset = 0, done = 0;
    int64_t last_t = 0;
    char last_id[RS_ID_MAX] = "";
    while (!done && s->scanned < RS_HTTP_SCAN_MAX) {
        int nh = 0;
        RS_HTTP_REDIS(http, errstr,
                      rs_sink_redis_index_newest(sink, s->entity, s->since,
                                                 max_ms, offset, hits,
                                                 RS_HTTP_SCAN_CHUNK, &nh,
                                                 errstr, errstr_size));
        if (err != RS_OK) break;
        if (nh == 0) break;
        offset += nh;
        const char **ids = malloc((size_t)nh * sizeof(*ids));
        if (!ids) {
            err = rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < nh; i++) ids[i] = hits[i].id;
        rs_http_rows_t r;
        err = rs_http_rows_load(http, ids, nh, s->keep_raw, &r, errstr,
                                errstr_size);
        free(ids);
        if (err != RS_OK) {
            rs_http_rows_free(&r);
            break;
        }
        for (int i = 0; i < nh && !done; i++) {
            if (s->scanned >= RS_HTTP_SCAN_MAX) {
                s->capped = 1;
                done = 1;
                break;
            }
            s->scanned++;
            last_t = hits[i].t_ms;
            rs_strlcpy(last_id, hits[i].id, sizeof(last_id));
            if (s->has_cur && hits[i].t_ms == s->cur_t &&
                strcmp(hits[i].id, s->cur_id) >= 0)
                continue; /* shown on an earlier page */
            rs_score_t *sc = r.sc[i];
            if (!sc) continue; /* expired, the index not yet */
            rs_decision_t d = sc->decision;
            if (s->alerts_only && d != RS_DECISION_REVIEW &&
                d != RS_DECISION_DECLINE && d != RS_DECISION_ALERT)
                continue;
            if (s->dec_mask && !(s->dec_mask & (1u << d))) continue;
            if (s->min_score >= 0 && !(sc->score >= s->min_score)) continue;
            if (s->status == 1 && r.out[i].present) continue;
            if (s->status == 2 && !r.out[i].present) continue;
            if (s->n == s->limit) {
                s->more = 1;
                done = 1;
                break;
            }
            s->rows[s->n] = sc;
            r.sc[i] = NULL;
            if (s->keep_raw) {
                s->raw[s->n] = r.raw[i];
                r.raw[i] = NULL;
            }
            s->outs[s->n] = r.out[i];
            s->n++;
        }
        rs_http_rows_free(&r);
        if (nh < RS_HTTP_SCAN_CHUNK) break; /* the end of the index */
    }
    if (err == RS_OK && !s->more && s->scanned >= RS_HTTP_SCAN_MAX &&
        !done)
        s->capped = 1;
    if (s->more && s->n > 0) {
        s->next_t = s->rows[s->n - 1]->event_time_ms;
        rs_strlcpy(s->next_id, s->rows[s->n - 1]->event_id,
                   sizeof(s->next_id));
    } else if (s->capped) {
        /* continue from the last entry examined */
        s->more = 1;
        s->next_t = last_t;
        rs_strlcpy(s->next_id, last_id, sizeof(s->next_id));
    }
    free(hits);
    return err;
}

/* "before=<ms>:<id>" -> cursor.  0 or -1. */
static int rs_http_cursor(const char *v, int64_t *t, char *id, size_t size) {
    char *end;
    if (!v[0]) return 0;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end != ':' || strlen(end + 1) >= size) return -1;
    *t = x;
    rs_strlcpy(id, end + 1, size);
    return 1;
}

/* The label sender, read under the lock (it is set at start-up while the
 * pool threads may already run). */
typedef struct rs_http_labeler_s {
    rs_http_label_fn fn;
    void *opaque;
    char topic[128];
} rs_http_labeler_t;

static void rs_http_labeler(rs_http_t *http, rs_http_labeler_t *l) {
    pthread_mutex_lock(&http->lock);
    l->fn = http->label_fn;
    l->opaque = http->label_opaque;
    rs_strlcpy(l->topic, http->label_topic, sizeof(l->topic));
    pthread_mutex_unlock(&http->lock);
}

/* ------------------------------------------------------------ the routes */

static int rs_http_score(rs_http_t *http, const char *id, rs_http_buf_t *b,
                         const char **ctype) {
    char errstr[512];
    char *json = malloc(RS_ENCODE_MAX);
    if (!json) return rs_http_error(b, ctype, 503, "out of memory");
    int status;
    rs_err_t err = strlen(id) >= RS_ID_MAX
                       ? RS_ERR_NOTFOUND
                       : rs_http_get_score(http, id, json, RS_ENCODE_MAX,
                                           errstr, sizeof(errstr));
    if (err == RS_ERR_NOTFOUND) {
        status = rs_http_error(b, ctype, 404,
                               "no score for event '%.64s' (expired after "
                               "redis.ttl, or never scored)", id);
    } else if (err != RS_OK) {
        status = rs_http_redis_error(b, ctype, err, errstr);
    } else {
        rs_http_buf_append(b, json, strlen(json));
        *ctype = RS_CT_JSON;
        status = 200;
    }
    free(json);
    return status;
}

/* The case view: the record, its outcome, the entity's events around it
 * (up to 24 at or before it, 5 after). */
#define RS_HTTP_CASE_OLDER 24
#define RS_HTTP_CASE_NEWER 5

static int rs_http_case(rs_http_t *http, const char *id, rs_http_buf_t *b,
                        const char **ctype) {
    char errstr[512];
    rs_err_t err;
    int status = 200;
    rs_http_rows_t me, hist;
    memset(&me, 0, sizeof(me));
    memset(&hist, 0, sizeof(hist));
    if (strlen(id) >= RS_ID_MAX)
        return rs_http_error(b, ctype, 404, "no score for event '%.64s'", id);
    const char *one[1] = {id};
    err = rs_http_rows_load(http, one, 1, 0, &me, errstr, sizeof(errstr));
    if (err != RS_OK) {
        rs_http_rows_free(&me);
        return rs_http_redis_error(b, ctype, err, errstr);
    }
    if (!me.sc[0]) {
        status = me.errstr[0]
                     ? rs_http_error(b, ctype, 500,
                                     "stored record does not decode: %s",
                                     me.errstr)
                     : rs_http_error(b, ctype, 404,
                                     "no score for event '%.64s' (expired "
                                     "after redis.ttl, or never scored)",
                                     id);
        rs_http_rows_free(&me);
        return status;
    }
    const rs_score_t *sc = me.sc[0];
    /* the entity's events: newer ones (oldest first from the index), then
     * the ones at or before this event, newest first */
    rs_redis_hit_t older[RS_HTTP_CASE_OLDER];
    char newer[RS_HTTP_CASE_NEWER][RS_ID_MAX];
    int no = 0, nn = 0;
    RS_HTTP_REDIS(http, errstr,
                  rs_sink_redis_entity_scores(sink, sc->entity_id,
                                              sc->event_time_ms + 1, newer,
                                              RS_HTTP_CASE_NEWER, &nn, errstr,
                                              sizeof(errstr)));
    if (err == RS_OK)
        RS_HTTP_REDIS(http, errstr,
                      rs_sink_redis_index_newest(sink, sc->entity_id, 0,
                                                 sc->event_time_ms, 0, older,
                                                 RS_HTTP_CASE_OLDER, &no,
                                                 errstr, sizeof(errstr)));
    const char *ids[RS_HTTP_CASE_OLDER + RS_HTTP_CASE_NEWER];
    int ni = 0;
    for (int i = nn - 1; i >= 0; i--) ids[ni++] = newer[i];
    for (int i = 0; i < no; i++) ids[ni++] = older[i].id;
    if (err == RS_OK)
        err = rs_http_rows_load(http, ids, ni, 0, &hist, errstr,
                                sizeof(errstr));
    if (err != RS_OK) {
        status = rs_http_redis_error(b, ctype, err, errstr);
    } else {
        const rs_score_t *rows[RS_HTTP_CASE_OLDER + RS_HTTP_CASE_NEWER];
        rs_http_outcome_t outs[RS_HTTP_CASE_OLDER + RS_HTTP_CASE_NEWER];
        int nr = 0, newer_kept = 0;
        for (int i = 0; i < ni; i++) {
            if (!hist.sc[i]) continue;
            if (i < nn) newer_kept++;
            outs[nr] = hist.out[i];
            rows[nr++] = hist.sc[i];
        }
        char href[RS_ID_MAX * 3 + 32];
        rs_http_labeler_t lab;
        rs_http_labeler(http, &lab);
        rs_http_buf_t hb = {NULL, 0, 0, 0};
        rs_http_buf_url(&hb, id);
        snprintf(href, sizeof(href), "/v1/scores/%s", hb.p ? hb.p : "");
        free(hb.p);
        rs_http_case_t c = {
            .sc = sc, .outcome = &me.out[0], .hist = rows, .hist_out = outs,
            .nhist = nr, .hist_newer = newer_kept,
            .labels = lab.fn != NULL,
            .labels_topic = lab.topic, .json_href = href};
        rs_http_chrome_t ch = {http->token_len > 0, NULL};
        rs_http_render_case(&ch, &c, b);
        *ctype = RS_CT_HTML;
    }
    rs_http_rows_free(&hist);
    rs_http_rows_free(&me);
    return status;
}

static int rs_http_outcome_get(rs_http_t *http, const char *id,
                               rs_http_buf_t *b, const char **ctype) {
    char errstr[512];
    rs_http_rows_t r;
    const char *one[1] = {id};
    if (strlen(id) >= RS_ID_MAX)
        return rs_http_error(b, ctype, 404, "no outcome for event '%.64s'",
                             id);
    rs_err_t err = rs_http_rows_load(http, one, 1, 0, &r, errstr,
                                     sizeof(errstr));
    int status;
    if (err != RS_OK)
        status = rs_http_redis_error(b, ctype, err, errstr);
    else if (!r.out[0].present)
        status = rs_http_error(b, ctype, 404, "no outcome for event '%.64s'",
                               id);
    else {
        rs_http_outcome_json(&r.out[0], id, r.sc[0] ? r.sc[0]->entity_id : "",
                             b);
        *ctype = RS_CT_JSON;
        status = 200;
    }
    rs_http_rows_free(&r);
    return status;
}

static int rs_http_entity(rs_http_t *http, struct MHD_Connection *conn,
                          const char *entity, rs_http_buf_t *b,
                          const char **ctype) {
    char errstr[512], qv[128];
    int64_t since_ms = 0;
    long limit = RS_HTTP_LIMIT_DEF;
    if (rs_http_arg(conn, "since", qv, sizeof(qv)) < 0 ||
        (qv[0] && rs_http_since_parse(qv, rs_clock_wall_ms(), &since_ms) != 0))
        return rs_http_error(b, ctype, 400,
                             "since: expected an ISO time, epoch s/ms or a "
                             "duration ago like 7d");
    const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "limit");
    if (l && *l) {
        char *end;
        errno = 0;
        limit = strtol(l, &end, 10);
        if (errno || *end || limit < 1 || limit > RS_HTTP_LIMIT_MAX)
            return rs_http_error(b, ctype, 400,
                                 "limit: expected 1..%d", RS_HTTP_LIMIT_MAX);
    }
    if (strlen(entity) >= RS_ID_MAX) {
        RS_HTTP_LIT(b, "[]\n");
        *ctype = RS_CT_JSON;
        return 200;
    }
    /* newest first, straight from the index */
    rs_redis_hit_t *hits = malloc((size_t)limit * sizeof(*hits));
    char *json = malloc(RS_ENCODE_MAX);
    int n = 0, status = 200, out = 0;
    rs_err_t err;
    if (!hits || !json) {
        status = rs_http_error(b, ctype, 503, "out of memory");
        goto done;
    }
    /* A duration ("7d") counts back from the entity's newest event, as
     * `audit --entity ID --since 7d` does: event times of a replay or of
     * the demo's generated data are not near the wall clock. */
    int64_t ago = 0;
    if (qv[0] && !rs_http_all_digits(qv) && rs_duration_parse(qv, &ago) == 0) {
        RS_HTTP_REDIS(http, errstr,
                      rs_sink_redis_index_newest(sink, entity, 0, INT64_MAX,
                                                 0, hits, 1, &n, errstr,
                                                 sizeof(errstr)));
        if (err != RS_OK) {
            status = rs_http_redis_error(b, ctype, err, errstr);
            goto done;
        }
        since_ms = n ? hits[0].t_ms - ago : 0;
        n = 0;
    }
    RS_HTTP_REDIS(http, errstr,
                  rs_sink_redis_index_newest(sink, entity, since_ms, INT64_MAX,
                                             0, hits, (int)limit, &n, errstr,
                                             sizeof(errstr)));
    if (err != RS_OK) {
        status = rs_http_redis_error(b, ctype, err, errstr);
        goto done;
    }
    RS_HTTP_LIT(b, "[");
    for (int i = 0; i < n; i++) {
        err = rs_http_get_score(http, hits[i].id, json, RS_ENCODE_MAX, errstr,
                                sizeof(errstr));
        if (err == RS_ERR_NOTFOUND) continue; /* expired, index not yet */
        if (err != RS_OK) {
            status = rs_http_redis_error(b, ctype, err, errstr);
            goto done;
        }
        if (out++) RS_HTTP_LIT(b, ",\n");
        rs_http_buf_append(b, json, strlen(json));
    }
    RS_HTTP_LIT(b, "]\n");
    *ctype = RS_CT_JSON;
done:
    free(hits);
    free(json);
    return status;
}

/* The queue's filters from the query string.  0, or an HTTP status with
 * the error in b. */
static int rs_http_queue_args(struct MHD_Connection *conn, rs_http_qf_t *qf,
                              rs_http_scan_t *s, rs_http_buf_t *b,
                              const char **ctype) {
    char v[RS_ID_MAX * 3 + 32];
    memset(qf, 0, sizeof(*qf));
    s->min_score = -1;
    s->since = 0;
    s->until = INT64_MAX;
    s->limit = RS_HTTP_PAGE_DEF;
    if (rs_http_arg(conn, "decision", qf->decision, sizeof(qf->decision)) < 0)
        return rs_http_error(b, ctype, 400, "decision: too long");
    for (char *p = qf->decision; *p;) {
        char one[16];
        size_t k = strcspn(p, ",");
        if (k == 0 || k >= sizeof(one))
            return rs_http_error(b, ctype, 400, "decision: expected review, "
                                 "decline or alert (comma list)");
        memcpy(one, p, k);
        one[k] = '\0';
        int d = rs_decision_parse(one);
        if (d != RS_DECISION_REVIEW && d != RS_DECISION_DECLINE &&
            d != RS_DECISION_ALERT)
            return rs_http_error(b, ctype, 400, "decision: '%s' is not "
                                 "review, decline or alert", one);
        s->dec_mask |= 1u << d;
        p += k + (p[k] == ',');
    }
    int64_t now = rs_clock_wall_ms();
    if (rs_http_arg(conn, "since", qf->since, sizeof(qf->since)) < 0 ||
        (qf->since[0] && rs_http_since_parse(qf->since, now, &s->since)))
        return rs_http_error(b, ctype, 400, "since: expected an ISO time, "
                             "epoch s/ms or a duration ago like 7d");
    if (rs_http_arg(conn, "until", qf->until, sizeof(qf->until)) < 0 ||
        (qf->until[0] && rs_http_since_parse(qf->until, now, &s->until)))
        return rs_http_error(b, ctype, 400, "until: expected an ISO time, "
                             "epoch s/ms or a duration ago like 1h");
    if (rs_http_arg(conn, "min_score", qf->min_score,
                    sizeof(qf->min_score)) < 0)
        return rs_http_error(b, ctype, 400, "min_score: expected 0..1");
    if (qf->min_score[0]) {
        char *end;
        s->min_score = strtod(qf->min_score, &end);
        if (*end || !(s->min_score >= 0 && s->min_score <= 1))
            return rs_http_error(b, ctype, 400, "min_score: expected 0..1");
    }
    if (rs_http_arg(conn, "entity", qf->entity, sizeof(qf->entity)) < 0)
        return rs_http_error(b, ctype, 400, "entity: too long");
    if (rs_http_arg(conn, "status", qf->status, sizeof(qf->status)) < 0 ||
        (qf->status[0] && strcmp(qf->status, "open") &&
         strcmp(qf->status, "labelled") && strcmp(qf->status, "any")))
        return rs_http_error(b, ctype, 400, "status: expected open, labelled "
                             "or any");
    if (!strcmp(qf->status, "any")) qf->status[0] = '\0';
    s->status = !strcmp(qf->status, "open") ? 1
                : !strcmp(qf->status, "labelled") ? 2 : 0;
    if (rs_http_arg(conn, "limit", v, sizeof(v)) < 0) v[0] = 'x';
    if (v[0]) {
        char *end;
        long lim = strtol(v, &end, 10);
        if (*end || lim < 1 || lim > RS_HTTP_PAGE_MAX)
            return rs_http_error(b, ctype, 400, "limit: expected 1..%d",
                                 RS_HTTP_PAGE_MAX);
        s->limit = (int)lim;
        qf->limit = (int)lim;
    }
    if (rs_http_arg(conn, "before", v, sizeof(v)) < 0 ||
        (s->has_cur = rs_http_cursor(v, &s->cur_t, s->cur_id,
                                     sizeof(s->cur_id))) < 0)
        return rs_http_error(b, ctype, 400, "before: expected <event time "
                             "ms>:<event id>");
    s->alerts_only = 1;
    s->entity = qf->entity[0] ? qf->entity : NULL;
    return 0;
}

static int rs_http_queue(rs_http_t *http, struct MHD_Connection *conn,
                         int html, rs_http_buf_t *b, const char **ctype) {
    char errstr[512];
    rs_http_qf_t qf;
    rs_http_scan_t s;
    memset(&s, 0, sizeof(s));
    int status = rs_http_queue_args(conn, &qf, &s, b, ctype);
    if (status) return status;
    if (s.entity && strlen(s.entity) >= RS_ID_MAX) s.entity = "";
    s.keep_raw = !html;
    rs_err_t err = rs_http_scan(http, &s, errstr, sizeof(errstr));
    if (err != RS_OK) {
        rs_http_scan_free(&s);
        return rs_http_redis_error(b, ctype, err, errstr);
    }
    if (html) {
        rs_http_list_t l = {(const rs_score_t *const *)s.rows, s.outs, s.n,
                            s.more, s.next_t, s.next_id, s.capped,
                            s.scanned};
        rs_http_chrome_t ch = {http->token_len > 0, NULL};
        rs_http_render_queue(&ch, &qf, &l, b);
        *ctype = RS_CT_HTML;
    } else {
        RS_HTTP_LIT(b, "{\"alerts\":[");
        for (int i = 0; i < s.n; i++) {
            if (i) RS_HTTP_LIT(b, ",");
            RS_HTTP_LIT(b, "\n{\"record\":");
            rs_http_buf_append(b, s.raw[i], strlen(s.raw[i]));
            RS_HTTP_LIT(b, ",\"outcome\":");
            if (s.outs[i].present)
                rs_http_outcome_json(&s.outs[i], s.rows[i]->event_id,
                                     s.rows[i]->entity_id, b);
            else
                RS_HTTP_LIT(b, "null");
            RS_HTTP_LIT(b, "}");
        }
        RS_HTTP_LIT(b, "],\"next_before\":");
        if (s.more) {
            char cur[RS_ID_MAX + 32];
            snprintf(cur, sizeof(cur), "%" PRId64 ":%s", s.next_t, s.next_id);
            rs_http_buf_jstr(b, cur);
        } else {
            RS_HTTP_LIT(b, "null");
        }
        rs_http_buf_printf(b, ",\"scanned\":%d,\"capped\":%s}\n", s.scanned,
                           s.capped ? "true" : "false");
        *ctype = RS_CT_JSON;
    }
    rs_http_scan_free(&s);
    return 200;
}

static int rs_http_entity_page(rs_http_t *http, struct MHD_Connection *conn,
                               const char *entity, rs_http_buf_t *b,
                               const char **ctype) {
    char errstr[512], v[RS_ID_MAX * 3 + 32];
    rs_http_scan_t s;
    memset(&s, 0, sizeof(s));
    s.entity = entity;
    s.min_score = -1;
    s.until = INT64_MAX;
    s.limit = RS_HTTP_PAGE_DEF;
    if (rs_http_arg(conn, "before", v, sizeof(v)) < 0 ||
        (s.has_cur = rs_http_cursor(v, &s.cur_t, s.cur_id,
                                    sizeof(s.cur_id))) < 0)
        return rs_http_error(b, ctype, 400, "before: expected <event time "
                             "ms>:<event id>");
    if (strlen(entity) >= RS_ID_MAX) s.entity = "";
    rs_err_t err = rs_http_scan(http, &s, errstr, sizeof(errstr));
    if (err != RS_OK) {
        rs_http_scan_free(&s);
        return rs_http_redis_error(b, ctype, err, errstr);
    }
    rs_http_list_t l = {(const rs_score_t *const *)s.rows, s.outs, s.n,
                        s.more, s.next_t, s.next_id, s.capped, s.scanned};
    rs_http_chrome_t ch = {http->token_len > 0, NULL};
    rs_http_render_entity(&ch, entity, &l, !s.has_cur, b);
    *ctype = RS_CT_HTML;
    rs_http_scan_free(&s);
    return 200;
}

/* /v1/search?q=X: the case view of event X, else the page of entity X,
 * else "nothing found" (404). */
static int rs_http_search(rs_http_t *http, struct MHD_Connection *conn,
                          rs_http_buf_t *b, rs_http_out_t *o) {
    char errstr[512], q[RS_ID_MAX * 2];
    rs_err_t err;
    if (rs_http_arg(conn, "q", q, sizeof(q)) < 0)
        q[0] = '\0';
    if (!q[0]) {
        snprintf(o->location, sizeof(o->location), "/v1/alerts/view");
        return 303;
    }
    int found = 0;
    if (strlen(q) < RS_ID_MAX) {
        rs_http_rows_t r;
        const char *one[1] = {q};
        err = rs_http_rows_load(http, one, 1, 0, &r, errstr, sizeof(errstr));
        found = err == RS_OK && r.sc[0];
        rs_http_rows_free(&r);
        if (err != RS_OK) return rs_http_redis_error(b, &o->ctype, err, errstr);
        if (!found) {
            rs_redis_hit_t h[1];
            int n = 0;
            RS_HTTP_REDIS(http, errstr,
                          rs_sink_redis_index_newest(sink, q, 0, INT64_MAX, 0,
                                                     h, 1, &n, errstr,
                                                     sizeof(errstr)));
            if (err != RS_OK)
                return rs_http_redis_error(b, &o->ctype, err, errstr);
            if (n > 0) found = 2;
        }
    }
    if (found) {
        rs_http_buf_t u = {NULL, 0, 0, 0};
        rs_http_buf_url(&u, q);
        snprintf(o->location, sizeof(o->location), "/v1/%s/%s/view",
                 found == 1 ? "scores" : "entities", u.p ? u.p : "");
        free(u.p);
        return 303;
    }
    rs_http_chrome_t ch = {http->token_len > 0, q};
    rs_http_render_notfound(&ch, q, b);
    o->ctype = RS_CT_HTML;
    return 404;
}

/* ------------------------------------------------------- the label action */

/* POST /v1/scores/{id}/label {"outcome": "fraud"|"genuine", "analyst",
 * "note"}: claim the outcome (SET NX), send the Label, undo the claim if
 * the Label could not be delivered. */
static int rs_http_label(rs_http_t *http, struct MHD_Connection *conn,
                         const char *id, const rs_http_req_t *req,
                         rs_http_buf_t *b, const char **ctype) {
    char errstr[512];
    rs_err_t err;
    /* a cross-site form cannot send this content type, nor the header */
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "application/json", 16))
        return rs_http_error(b, ctype, 415, "the label action takes "
                             "Content-Type: application/json");
    const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
        return rs_http_error(b, ctype, 403, "cross-site request refused");
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_HOST);
    if (origin && strcmp(origin, "null")) {
        const char *o = !strncmp(origin, "http://", 7) ? origin + 7
                        : !strncmp(origin, "https://", 8) ? origin + 8 : NULL;
        if (!o || !host || strcasecmp(o, host))
            return rs_http_error(b, ctype, 403, "cross-origin request "
                                 "refused");
    }
    if (req->too_big)
        return rs_http_error(b, ctype, 413, "body larger than %d bytes",
                             RS_HTTP_POST_MAX);
    rs_http_outcome_t oc;
    memset(&oc, 0, sizeof(oc));
    json_error_t je;
    json_t *root = json_loadb(req->body, req->len, 0, &je);
    const char *outcome = NULL, *analyst = "", *note = "";
    if (root && json_is_object(root)) {
        json_t *v = json_object_get(root, "outcome");
        if (json_is_string(v)) outcome = json_string_value(v);
        v = json_object_get(root, "analyst");
        if (json_is_string(v)) analyst = json_string_value(v);
        else if (v && !json_is_null(v)) outcome = NULL;
        v = json_object_get(root, "note");
        if (json_is_string(v)) note = json_string_value(v);
        else if (v && !json_is_null(v)) outcome = NULL;
    }
    int status = 0;
    if (!outcome || (strcmp(outcome, "fraud") && strcmp(outcome, "genuine")))
        status = rs_http_error(b, ctype, 400, "body: expected {\"outcome\": "
                               "\"fraud\" or \"genuine\", \"analyst\": "
                               "string, \"note\": string}");
    else if (strlen(analyst) >= sizeof(oc.analyst) ||
             strlen(note) >= sizeof(oc.note))
        status = rs_http_error(b, ctype, 400, "analyst (max %zu bytes) or "
                               "note (max %zu bytes) too long",
                               sizeof(oc.analyst) - 1, sizeof(oc.note) - 1);
    if (!status) {
        rs_strlcpy(oc.outcome, outcome, sizeof(oc.outcome));
        rs_strlcpy(oc.analyst, analyst, sizeof(oc.analyst));
        rs_strlcpy(oc.note, note, sizeof(oc.note));
    }
    json_decref(root);
    if (status) return status;
    for (const char *p = oc.analyst; *p; p++)
        if ((unsigned char)*p < 0x20)
            return rs_http_error(b, ctype, 400, "analyst: control "
                                 "characters are not allowed");
    rs_http_labeler_t lab;
    rs_http_labeler(http, &lab);
    if (!lab.fn)
        return rs_http_error(b, ctype, 503, "labelling is not configured: "
                             "this API has no Kafka producer (riskstream api "
                             "--brokers, or the API inside serve)");
    /* the event must be on record: its entity keys the Label */
    rs_http_rows_t r;
    const char *one[1] = {id};
    if (strlen(id) >= RS_ID_MAX)
        return rs_http_error(b, ctype, 404, "no score for event '%.64s'", id);
    err = rs_http_rows_load(http, one, 1, 0, &r, errstr, sizeof(errstr));
    if (err != RS_OK) {
        rs_http_rows_free(&r);
        return rs_http_redis_error(b, ctype, err, errstr);
    }
    if (!r.sc[0]) {
        rs_http_rows_free(&r);
        return rs_http_error(b, ctype, 404, "no score for event '%.64s' "
                             "(expired after redis.ttl, or never scored)", id);
    }
    if (r.out[0].present) {
        status = rs_http_error(b, ctype, 409, "event '%.64s' was already "
                               "labelled %s", id, r.out[0].outcome);
        rs_http_rows_free(&r);
        return status;
    }
    char entity[RS_ID_MAX];
    rs_strlcpy(entity, r.sc[0]->entity_id, sizeof(entity));
    rs_http_rows_free(&r);
    oc.present = 1;
    oc.value = !strcmp(oc.outcome, "fraud") ? 1 : 0;
    oc.at_ms = rs_clock_wall_ms();
    rs_strlcpy(oc.topic, lab.topic, sizeof(oc.topic));
    rs_http_buf_t ob = {NULL, 0, 0, 0};
    rs_http_outcome_json(&oc, id, entity, &ob);
    /* claim first: of two analysts, one label */
    RS_HTTP_REDIS(http, errstr,
                  rs_sink_redis_set_outcome(sink, id, ob.p, 1, errstr,
                                            sizeof(errstr)));
    if (err == RS_ERR_STATE) {
        free(ob.p);
        return rs_http_error(b, ctype, 409, "event '%.64s' was already "
                             "labelled", id);
    }
    if (err != RS_OK) {
        free(ob.p);
        return rs_http_redis_error(b, ctype, err, errstr);
    }
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    rs_strlcpy(lb.event_id, id, sizeof(lb.event_id));
    rs_strlcpy(lb.entity_id, entity, sizeof(lb.entity_id));
    lb.value = oc.value;
    lb.label_time_ms = oc.at_ms;
    err = lab.fn(lab.opaque, &lb, errstr, sizeof(errstr));
    if (err != RS_OK) {
        char e2[256];
        rs_warn("http", "label of %.64s not delivered: %s", id, errstr);
        RS_HTTP_REDIS(http, e2,
                      rs_sink_redis_del_outcome(sink, id, e2, sizeof(e2)));
        free(ob.p);
        return rs_http_error(b, ctype, 503, "the label was not confirmed by "
                             "Kafka (%s); the outcome is not recorded: try "
                             "again (a label that arrives twice is learned "
                             "once)", errstr);
    }
    rs_info("http", "event %.64s labelled %s%s%.64s", id, oc.outcome,
            oc.analyst[0] ? " by " : "", oc.analyst);
    rs_http_buf_append(b, ob.p, ob.len);
    RS_HTTP_LIT(b, "\n");
    free(ob.p);
    *ctype = RS_CT_JSON;
    return 200;
}

/* ------------------------------------------------------------- dispatch */

/* The added route of method `post` matching `url` ({0} if none). */
static rs_http_route_t rs_http_find_route(rs_http_t *http, const char *url,
                                          int post) {
    rs_http_route_t r = {{0}, NULL, NULL, 0};
    pthread_mutex_lock(&http->lock);
    for (int i = 0; i < http->nroutes && !r.fn; i++) {
        size_t pl = strlen(http->routes[i].prefix);
        if (http->routes[i].post == post &&
            !strncmp(url, http->routes[i].prefix, pl) &&
            (url[pl] == '\0' || url[pl] == '/'))
            r = http->routes[i];
    }
    pthread_mutex_unlock(&http->lock);
    return r;
}

/* Split "/v1/scores/<seg>[/tail]" or "/v1/entities/<seg>[/tail]": 1 with
 * the decoded id in seg, 0 if not such a path, -1 for a bad id. */
static int rs_http_split(const char *url, const char *prefix, char *seg,
                         size_t size, const char **tail) {
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl)) return 0;
    const char *rest = url + pl;
    const char *slash = strchr(rest, '/');
    size_t sl = slash ? (size_t)(slash - rest) : strlen(rest);
    *tail = slash ? slash + 1 : NULL;
    if (sl == 0) return -2;
    if (sl >= size / 3 || rs_http_pct_decode(rest, sl, 0, seg, size) < 0)
        return -1;
    return 1;
}

/* Route one authenticated GET.  `url` is the raw path. */
static int rs_http_route(rs_http_t *http, struct MHD_Connection *conn,
                         const char *url, rs_http_buf_t *b, rs_http_out_t *o) {
    char seg[RS_ID_MAX * 4];
    const char *tail;
    int kind = 1;
    int k = rs_http_split(url, "/v1/scores/", seg, sizeof(seg), &tail);
    if (k == 0) {
        kind = 2;
        k = rs_http_split(url, "/v1/entities/", seg, sizeof(seg), &tail);
    }
    if (k == -2) return rs_http_error(b, &o->ctype, 404, "not found");
    if (k == -1) return rs_http_error(b, &o->ctype, 400, "bad id in path");
    if (k == 1 && kind == 1) {
        if (!tail) return rs_http_score(http, seg, b, &o->ctype);
        if (!strcmp(tail, "view")) return rs_http_case(http, seg, b, &o->ctype);
        if (!strcmp(tail, "outcome"))
            return rs_http_outcome_get(http, seg, b, &o->ctype);
        return rs_http_error(b, &o->ctype, 404, "not found");
    }
    if (k == 1 && kind == 2) {
        if (tail && !strcmp(tail, "scores"))
            return rs_http_entity(http, conn, seg, b, &o->ctype);
        if (tail && !strcmp(tail, "view"))
            return rs_http_entity_page(http, conn, seg, b, &o->ctype);
        return rs_http_error(b, &o->ctype, 404, "not found");
    }
    if (!strcmp(url, "/v1/alerts"))
        return rs_http_queue(http, conn, 0, b, &o->ctype);
    if (!strcmp(url, "/v1/alerts/view"))
        return rs_http_queue(http, conn, 1, b, &o->ctype);
    if (!strcmp(url, "/v1/search")) return rs_http_search(http, conn, b, o);
    rs_http_route_t r = rs_http_find_route(http, url, 0);
    if (r.fn) {
        o->ctype = RS_CT_TEXT;
        return r.fn(r.opaque, url, b, &o->ctype);
    }
    return rs_http_error(b, &o->ctype, 404, "not found");
}

/* The token from the Authorization header (any request) or, for GET and
 * HEAD only, from the rs_token cookie set by the sign-in page. */
static int rs_http_authorized(rs_http_t *http, struct MHD_Connection *conn,
                              int cookie_ok) {
    if (!http->token_len) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        return rs_http_ct_eq(h, strlen(h), http->token, http->token_len);
    }
    if (h || !cookie_ok) return 0;
    const char *c = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
                                                "rs_token");
    char tok[sizeof(http->token)];
    if (!c || rs_http_pct_decode(c, strlen(c), 0, tok, sizeof(tok)) < 0)
        return 0;
    int ok = rs_http_ct_eq(tok, strlen(tok), http->token, http->token_len);
    memset(tok, 0, sizeof(tok));
    return ok;
}

/* A page (HTML) rather than a JSON route: a 401 there is the sign-in
 * page. */
static int rs_http_is_page(const char *url) {
    size_t n = strlen(url);
    return !strcmp(url, "/") || !strcmp(url, "/v1/search") ||
           (n >= 5 && !strcmp(url + n - 5, "/view"));
}

static void rs_http_completed(void *cls, struct MHD_Connection *conn,
                              void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
    RS_UNUSED(cls);
    RS_UNUSED(conn);
    RS_UNUSED(toe);
    free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result rs_http_handle(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls) {
    rs_http_t *http = cls;
    rs_http_buf_t b = {NULL, 0, 0, 0};
    rs_http_out_t o;
    int status;
    int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) ||
                 !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
    RS_UNUSED(version);
    o.ctype = RS_CT_TEXT;
    o.location[0] = '\0';

    /* A POST is answered once its body is in: the first call sets up the
     * request, the next ones keep up to RS_HTTP_POST_MAX bytes. */
    if (is_post && *con_cls == NULL) {
        rs_http_req_t *req = calloc(1, sizeof(*req));
        if (!req) return MHD_NO;
        req->post = 1;
        *con_cls = req;
        return MHD_YES;
    }
    if (is_post && *upload_data_size) {
        rs_http_req_t *req = *con_cls;
        size_t n = *upload_data_size;
        if (req->len + n > RS_HTTP_POST_MAX) req->too_big = 1;
        else {
            memcpy(req->body + req->len, upload_data, n);
            req->len += n;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    char seg[RS_ID_MAX * 4];
    const char *tail = NULL;
    if (strlen(url) > RS_HTTP_URL_MAX) {
        status = rs_http_error(&b, &o.ctype, 414, "URL too long");
    } else if (is_post) {
        rs_http_req_t *req = *con_cls;
        int k = rs_http_split(url, "/v1/scores/", seg, sizeof(seg), &tail);
        if (k == 1 && tail && !strcmp(tail, "label")) {
            if (!rs_http_authorized(http, conn, 0))
                status = rs_http_error(&b, &o.ctype, 401, "the label action "
                                       "needs the Authorization: Bearer "
                                       "header");
            else
                status = rs_http_label(http, conn, seg, req, &b, &o.ctype);
        } else {
            rs_http_route_t r = rs_http_find_route(http, url, 1);
            if (!r.fn)
                status = rs_http_error(&b, &o.ctype, 405,
                                       "method not allowed");
            else if (req->len || req->too_big)
                status = rs_http_error(&b, &o.ctype, 413,
                                       "request body not accepted");
            else if (!rs_http_authorized(http, conn, 0))
                status = rs_http_error(&b, &o.ctype, 401,
                                       "missing or wrong bearer token");
            else
                status = r.fn(r.opaque, url, &b, &o.ctype);
        }
    } else if (!is_get) {
        status = rs_http_error(&b, &o.ctype, 405, "method not allowed");
    } else if (*upload_data_size) {
        status = rs_http_error(&b, &o.ctype, 413, "request body not accepted");
    } else if (!strcmp(url, "/healthz")) {
        RS_HTTP_LIT(&b, "ok\n");
        status = 200;
    } else if (!strcmp(url, "/static/rs.js")) {
        rs_http_buf_append(&b, rs_http_js, strlen(rs_http_js));
        o.ctype = RS_CT_JS;
        status = 200;
    } else if (!strcmp(url, "/login")) {
        char next[RS_HTTP_URL_MAX];
        if (rs_http_arg(conn, "next", next, sizeof(next)) < 0) next[0] = '\0';
        rs_http_render_login(next, 0, &b);
        o.ctype = RS_CT_HTML;
        status = 200;
    } else if (!strcmp(url, "/")) {
        snprintf(o.location, sizeof(o.location), "/v1/alerts/view");
        status = 303;
    } else if (!rs_http_authorized(http, conn, 1)) {
        if (rs_http_is_page(url)) {
            /* the sign-in page, coming back here (with the query) */
            rs_http_render_login(url, MHD_lookup_connection_value(
                                          conn, MHD_COOKIE_KIND,
                                          "rs_token") != NULL, &b);
            o.ctype = RS_CT_HTML;
            status = 401;
        } else {
            status = rs_http_error(&b, &o.ctype, 401,
                                   "missing or wrong bearer token");
        }
    } else {
        status = rs_http_route(http, conn, url, &b, &o);
    }
    if (b.overflow)
        status = rs_http_error(&b, &o.ctype, 500, "response too large");
    if (status == 303 && !b.len) RS_HTTP_LIT(&b, "see other\n");
    if (!b.p) RS_HTTP_LIT(&b, "");
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, o.ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!strcmp(o.ctype, RS_CT_HTML)) {
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; style-src "
                                "'unsafe-inline'; img-src data:; script-src "
                                "'self'; connect-src 'self'; form-action "
                                "'self'; base-uri 'none'; frame-ancestors "
                                "'none'");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    }
    if (o.location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, o.location);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"riskstream\"");
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Keep the URL percent-encoded: segments are decoded one by one. */
static size_t rs_http_unescape_none(void *cls, struct MHD_Connection *c,
                                    char *s) {
    RS_UNUSED(cls);
    RS_UNUSED(c);
    return strlen(s);
}

static void rs_http_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    RS_UNUSED(cls);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    rs_warn("http", "%s", msg);
}

rs_http_t *rs_http_new(const rs_http_conf_t *conf,
                       const rs_redis_conf_t *redis, char *errstr,
                       size_t errstr_size) {
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    rs_http_t *http = NULL;

    if (conf->port < 0 || conf->port > 65535) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "http.port: %" PRId64 " is not a port", conf->port);
        return NULL;
    }
    memset(&sa4, 0, sizeof(sa4));
    memset(&sa6, 0, sizeof(sa6));
    if (inet_pton(AF_INET, conf->bind, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)conf->port);
        sa = (const struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, conf->bind, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)conf->port);
        sa = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "http.bind: '%.64s' is not an IPv4 or IPv6 address",
                conf->bind);
        return NULL;
    }
    if (rs_redis_conf_check(redis, errstr, errstr_size) != RS_OK) return NULL;

    http = rs_calloc(1, sizeof(*http));
    http->conf = *conf;
    http->redis = *redis;
    pthread_mutex_init(&http->lock, NULL);
    if (conf->token_env[0]) {
        const char *tok = getenv(conf->token_env);
        if (!tok || !*tok) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "http.token_env: environment variable '%.64s' is not set "
                    "or empty", conf->token_env);
            goto fail;
        }
        if (strlen(tok) >= sizeof(http->token)) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "http.token_env: the token is longer than %zu bytes",
                    sizeof(http->token) - 1);
            goto fail;
        }
        http->token_len = rs_strlcpy(http->token, tok, sizeof(http->token));
    }
    if (pthread_key_create(&http->tls, rs_http_tls_free) != 0) {
        rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "http: pthread_key_create");
        goto fail;
    }
    http->tls_ok = 1;
    unsigned int threads = (unsigned int)RS_MAX(1, RS_MIN(conf->threads, 64));
    http->mhd = MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, rs_http_handle, http,
        MHD_OPTION_EXTERNAL_LOGGER, rs_http_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_UNESCAPE_CALLBACK, rs_http_unescape_none, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, rs_http_completed, NULL,
        MHD_OPTION_END);
    if (!http->mhd) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "http: cannot listen on %.64s:%" PRId64 " (%s)", conf->bind,
                conf->port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = di ? (int)di->port : (int)conf->port;
    rs_info("http", "listening on %s:%d (%u threads, auth %s)", conf->bind,
            http->port, threads, http->token_len ? "bearer" : "off");
    return http;
fail:
    rs_http_destroy(http);
    return NULL;
}

int rs_http_port(const rs_http_t *http) { return http ? http->port : 0; }

static rs_err_t rs_http_add(rs_http_t *http, const char *prefix,
                            rs_http_route_fn fn, void *opaque, int post) {
    if (!http || !fn || !prefix || prefix[0] != '/' ||
        strlen(prefix) >= sizeof(http->routes[0].prefix))
        return RS_ERR_INVALID;
    rs_err_t err = RS_OK;
    pthread_mutex_lock(&http->lock);
    if (http->nroutes >= RS_HTTP_MAX_ROUTES) {
        err = RS_ERR_NOMEM;
    } else {
        rs_http_route_t *r = &http->routes[http->nroutes++];
        rs_strlcpy(r->prefix, prefix, sizeof(r->prefix));
        r->fn = fn;
        r->opaque = opaque;
        r->post = post;
    }
    pthread_mutex_unlock(&http->lock);
    return err;
}

void rs_http_set_labeler(rs_http_t *http, rs_http_label_fn fn, void *opaque,
                         const char *topic) {
    if (!http) return;
    pthread_mutex_lock(&http->lock);
    http->label_fn = fn;
    http->label_opaque = opaque;
    rs_strlcpy(http->label_topic, topic ? topic : "",
               sizeof(http->label_topic));
    pthread_mutex_unlock(&http->lock);
}

rs_err_t rs_http_add_route(rs_http_t *http, const char *prefix,
                           rs_http_route_fn fn, void *opaque) {
    return rs_http_add(http, prefix, fn, opaque, 0);
}

rs_err_t rs_http_add_post_route(rs_http_t *http, const char *prefix,
                                rs_http_route_fn fn, void *opaque) {
    return rs_http_add(http, prefix, fn, opaque, 1);
}

void rs_http_destroy(rs_http_t *http) {
    if (!http) return;
    /* Joins the pool threads: their thread-specific Redis connections are
     * closed by rs_http_tls_free as they exit. */
    if (http->mhd) MHD_stop_daemon(http->mhd);
    if (http->tls_ok) pthread_key_delete(http->tls);
    pthread_mutex_destroy(&http->lock);
    memset(http->token, 0, sizeof(http->token));
    rs_free(http);
}
