/* http.h -- the HTTP API over the Redis score store: audit lookups
 * (issue 5) and the analysts' pages (issue 14), served with libmicrohttpd.
 *
 * Routes (GET or HEAD unless said; anything else is 405):
 *   GET /healthz                          "ok" (never needs the token)
 *   GET /login                            sign-in page (no token needed)
 *   GET /static/rs.js                     the pages' script (no token)
 *   GET /                                 303 to /v1/alerts/view
 *   GET /v1/scores/{event_id}             the stored Score JSON, verbatim
 *   GET /v1/scores/{event_id}/view        the case view (HTML): the event's
 *                                         fields and trends, score, decision,
 *                                         outcome and label action, reasons
 *                                         and contributions in words, the
 *                                         entity's recent events, attended
 *                                         history, experts
 *   GET /v1/scores/{event_id}/outcome     the analyst's outcome (JSON)
 *   POST /v1/scores/{event_id}/label      the label action: body
 *                                         {"outcome":"fraud"|"genuine",
 *                                         "analyst","note"}, Content-Type
 *                                         application/json, token in the
 *                                         Authorization header (never the
 *                                         cookie); 409 if already labelled
 *   GET /v1/entities/{id}/scores?since=T&limit=N
 *                                         JSON array of the entity's score
 *                                         records, newest first (T: ISO
 *                                         time, epoch s/ms, or a duration
 *                                         ago such as 7d; N default 100,
 *                                         max 1000)
 *   GET /v1/entities/{id}/view?before=C   the entity's events (HTML)
 *   GET /v1/alerts?decision=&since=&until=&min_score=&entity=&status=
 *                 &limit=&before=         the alert queue (JSON)
 *   GET /v1/alerts/view?...               the alert queue (HTML)
 *   GET /v1/search?q=X                    303 to the case view of event X,
 *                                         else the page of entity X, else
 *                                         404 (HTML)
 *   + prefixes added with rs_http_add_route() (e.g. /metrics)
 * Errors are JSON {"error": "..."} with 400/401/403/404/405/409/413/415/
 * 503 (a page answers 401 with the sign-in page).  Path segments are
 * percent-decoded one by one (so an event id may contain "/" as %2F);
 * requests are capped (32 KiB of headers, 8 KiB of URL, 4 KiB of label
 * body, no other body).
 *
 * Authentication: with `token_env` set every route but /healthz, /login
 * and /static/rs.js needs the token (compared in constant time), else
 * 401: "Authorization: Bearer <token>", or for GET/HEAD the cookie
 * rs_token that the sign-in page sets (SameSite=Lax).  The label action
 * takes the header only, and a JSON content type: a cross-site form can
 * send neither (CSRF); a cross-site Origin or Sec-Fetch-Site is 403.
 *
 * Threads: the server runs on its own pool of libmicrohttpd threads.  Each
 * pool thread opens its OWN Redis connection (an rs_sink_redis_t created
 * lazily on that thread, closed when the thread exits): hiredis contexts
 * are not thread-safe, and the service's connection is never shared.  A
 * lost connection is retried once per request, then 503.
 */
#ifndef RS_HTTP_H
#define RS_HTTP_H

#include "common/common.h"
#include "common/config.h"
#include "scoring/sink.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Section name of rs_http_conf_t in the YAML config. */
#define RS_HTTP_CONF_SECTION "http"

/* `http:` section.  Keys (type, default):
 *   enabled    bool    false       serve starts the API (riskstream api
 *                                  always does)
 *   bind       string  127.0.0.1   listen address (IPv4 or IPv6 literal)
 *   port       int     8080        0 = ephemeral (see rs_http_port)
 *   token_env  string  ""          env var holding the bearer token;
 *                                  "" = no authentication
 *   threads    int     4           server threads (one Redis connection
 *                                  each)
 */
typedef struct rs_http_conf_s {
    char bind[64];
    int64_t port;
    char token_env[64];
    int enabled;
    int64_t threads;
} rs_http_conf_t;

/* The field table (static); *n gets the row count.  @locality any */
const rs_conf_field_t *rs_http_conf_fields(int *n);
/* Fill `sec` (caller-owned, must outlive the registry) to register `conf`
 * as the RS_HTTP_CONF_SECTION section.  @locality any thread */
void rs_http_conf_section(rs_conf_section_t *sec, rs_http_conf_t *conf);
/* Set every field to its default (from the table).  @locality any */
void rs_http_conf_init(rs_http_conf_t *conf);

typedef struct rs_http_s rs_http_t;

/* Start serving.  `conf` and `redis` are copied.  Fails (NULL, errstr)
 * for a bad bind address, a token_env naming an unset or empty variable,
 * a bad Redis configuration (RS_ERR_CONFIG material, exit 2), or a port
 * that cannot be bound.  Redis itself is only contacted per request, so
 * the API starts even while Redis is down (and answers 503).
 * @locality any thread; the server then runs on its own threads */
rs_http_t *rs_http_new(const rs_http_conf_t *conf,
                       const rs_redis_conf_t *redis, char *errstr,
                       size_t errstr_size);

/* The bound TCP port (the real one when conf->port was 0).  @locality any */
int rs_http_port(const rs_http_t *http);

/* A growing response body for route handlers. */
typedef struct rs_http_buf_s rs_http_buf_t;
void rs_http_buf_append(rs_http_buf_t *b, const char *s, size_t len);
void rs_http_buf_printf(rs_http_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append `s` with & < > " ' escaped for HTML text and attributes. */
void rs_http_buf_html(rs_http_buf_t *b, const char *s);

/* An extra route: called for GET requests whose path equals `prefix` or
 * starts with `prefix` + "/" (after authentication).  `path` is the raw
 * (still percent-encoded) path.  Fill `body`, optionally set
 * *content_type (a static string; default "text/plain; charset=utf-8"),
 * return the HTTP status.  Runs on a server thread, concurrently with
 * itself: must be thread-safe. */
typedef int (*rs_http_route_fn)(void *opaque, const char *path,
                                rs_http_buf_t *body,
                                const char **content_type);

/* Sends one analyst Label (the label action).  Returns RS_OK once the
 * label is acknowledged (e.g. by Kafka), else an error with errstr.  Runs
 * on a server thread, concurrently with itself: must be thread-safe. */
typedef rs_err_t (*rs_http_label_fn)(void *opaque, const rs_label_t *lb,
                                     char *errstr, size_t errstr_size);

/* Turn the label action on (fn non-NULL) with the topic it writes to (for
 * the pages).  Without it the action answers 503 and the case view shows
 * its buttons disabled.  `opaque` must outlive the server.  Call before
 * requests arrive (start-up).  @locality any thread */
void rs_http_set_labeler(rs_http_t *http, rs_http_label_fn fn, void *opaque,
                         const char *topic);

/* Register a route (at most 8; the built-in routes win).  `prefix` is
 * copied; `opaque` must outlive the server.  RS_ERR_NOMEM if full,
 * RS_ERR_INVALID for a prefix not starting with "/".  @locality any */
rs_err_t rs_http_add_route(rs_http_t *http, const char *prefix,
                           rs_http_route_fn fn, void *opaque);
/* The same for POST requests (no body accepted: 413), e.g. the running
 * service's model rollback.  Same limits and authentication. */
rs_err_t rs_http_add_post_route(rs_http_t *http, const char *prefix,
                                rs_http_route_fn fn, void *opaque);

/* Stop accepting, finish the requests in flight, join the threads (which
 * closes their Redis connections) and free.  NULL is a no-op.
 * @locality any thread but a server thread */
void rs_http_destroy(rs_http_t *http);

/* Parse a "since" bound: an epoch number (s or ms), an ISO / "YYYY-MM-DD
 * HH:MM:SS" UTC time, or a duration ago ("7d", "90m") counted back from
 * now_ms.  Pure.  0 and *out_ms, or -1.  @locality any */
int rs_http_since_parse(const char *s, int64_t now_ms, int64_t *out_ms);

/* Render the case view of one decision alone (no outcome, no entity
 * history) into `b` (pure, no I/O; every string of `sc` is escaped).
 * `json_href` (may be NULL) is linked as the raw record.  @locality any */
void rs_http_render_view(const rs_score_t *sc, const char *json_href,
                         rs_http_buf_t *b);

/* A standalone buffer for rs_http_render_view outside a request (tests,
 * tools): new / data / length / destroy.  @locality the owner thread */
rs_http_buf_t *rs_http_buf_new(void);
const char *rs_http_buf_data(const rs_http_buf_t *b);
size_t rs_http_buf_len(const rs_http_buf_t *b);
void rs_http_buf_destroy(rs_http_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif /* RS_HTTP_H */
