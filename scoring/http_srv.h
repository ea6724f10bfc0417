/* http_srv.h -- private to the HTTP API's server (http.c), its routes
 * (http_routes.c) and their Redis reads (http_read.c): the server object,
 * what a request carries, and the helpers they share.  Not for use
 * outside scoring/http*.c (the page renderers' inputs are http_int.h).
 *
 * A request flows: http.c (the libmicrohttpd callback: method, body,
 * authentication, dispatch by path) -> http_routes.c (one function per
 * route: its arguments, its answer) -> http_read.c (the Redis reads: one
 * record, the records and outcomes of a list of ids, a filtered scan of
 * an index) -> http_pages.c (HTML) or JSON.
 *
 * Threads: a request runs on one server thread (libmicrohttpd's pool);
 * the server object is read-only after start-up but for the fields under
 * its `lock` (routes, the label sender).
 */
#ifndef RS_HTTP_SRV_H
#define RS_HTTP_SRV_H

#include <pthread.h>

#include "scoring/http_int.h"

struct MHD_Connection;
struct MHD_Daemon;

#define RS_HTTP_MAX_ROUTES 8
#define RS_HTTP_URL_MAX 8192
#define RS_HTTP_LIMIT_DEF 100
#define RS_HTTP_LIMIT_MAX 1000
#define RS_HTTP_POST_MAX 4096   /* body of a label action              */


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

/* ------------------------------------------- request helpers (http.c) */

/* Percent-decode src[0..len) into out[size] ('+' as space if plus).
 * -1 for a bad escape, an encoded NUL or no room. */
int rs_http_pct_decode(const char *src, size_t len, int plus, char *out,
                       size_t size);
int rs_http_all_digits(const char *s);
/* A JSON error answer {"error": msg}: the body replaced, *ctype JSON;
 * returns status. */
int rs_http_error(rs_http_buf_t *b, const char **ctype, int status,
                  const char *fmt, ...);
/* Status for a failed Redis call (503 when the connection is lost). */
int rs_http_redis_error(rs_http_buf_t *b, const char **ctype,
                        rs_err_t err, const char *errstr);
/* A query argument, percent-decoded into out[size] ("" if absent).
 * -1 if it does not decode or fit. */
int rs_http_arg(struct MHD_Connection *conn, const char *name,
                char *out, size_t size);

/* ------------------------------------------------ Redis reads (http_read.c) */

/* The thread-specific data destructor of a server thread's connection. */
void rs_http_tls_free(void *p);
/* This thread's Redis connection, created on first use.  @locality a
 * server thread */
rs_sink_redis_t *rs_http_sink(rs_http_t *http, char *errstr,
                              size_t errstr_size);
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

/* One stored record (JSON) of event `id`; RS_ERR_NOTFOUND if none. */
rs_err_t rs_http_get_score(rs_http_t *http, const char *id, char *json,
                           size_t size, char *errstr,
                           size_t errstr_size);

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
void rs_http_rows_free(rs_http_rows_t *r);
rs_err_t rs_http_rows_load(rs_http_t *http, const char *const *ids,
                           int n, int keep_raw, rs_http_rows_t *r,
                           char *errstr, size_t errstr_size);

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
void rs_http_scan_free(rs_http_scan_t *s);
rs_err_t rs_http_scan(rs_http_t *http, rs_http_scan_t *s, char *errstr,
                      size_t errstr_size);

/* --------------------------------------------- the routes (http_routes.c) */

/* Each answers one request into b (*ctype: its content type) and returns
 * the HTTP status.  @locality a server thread */
int rs_http_score(rs_http_t *http, const char *id, rs_http_buf_t *b,
                  const char **ctype);
int rs_http_case(rs_http_t *http, const char *id, rs_http_buf_t *b,
                 const char **ctype);
int rs_http_outcome_get(rs_http_t *http, const char *id,
                        rs_http_buf_t *b, const char **ctype);
int rs_http_entity(rs_http_t *http, struct MHD_Connection *conn,
                   const char *entity, rs_http_buf_t *b,
                   const char **ctype);
int rs_http_queue(rs_http_t *http, struct MHD_Connection *conn,
                  int html, rs_http_buf_t *b, const char **ctype);
int rs_http_entity_page(rs_http_t *http, struct MHD_Connection *conn,
                        const char *entity, rs_http_buf_t *b,
                        const char **ctype);
int rs_http_search(rs_http_t *http, struct MHD_Connection *conn,
                   rs_http_buf_t *b, rs_http_out_t *o);
int rs_http_label(rs_http_t *http, struct MHD_Connection *conn,
                  const char *id, const rs_http_req_t *req,
                  rs_http_buf_t *b, const char **ctype);

#endif /* RS_HTTP_SRV_H */
