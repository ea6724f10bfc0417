/* http_routes.c -- the HTTP API's routes (see http_srv.h): one function
 * per route, from its arguments to its answer -- a stored record, the
 * case view, an outcome, an entity's records, the alert queue (JSON and
 * page), an entity's page, the search, and the label action.  The reads
 * are http_read.c's, the HTML http_pages.c's.
 *
 * The label action claims the outcome in Redis (SET NX), hands the Label
 * to the sender (a Kafka producer in the CLI) and undoes the claim if the
 * sender fails.  It takes the token only from the Authorization header and
 * only a JSON body, so a cross-site form cannot label.
 *
 * Threads: any server thread.
 */
#include "scoring/http_srv.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

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

int rs_http_score(rs_http_t *http, const char *id, rs_http_buf_t *b,
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

int rs_http_case(rs_http_t *http, const char *id, rs_http_buf_t *b,
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

int rs_http_outcome_get(rs_http_t *http, const char *id,
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

int rs_http_entity(rs_http_t *http, struct MHD_Connection *conn,
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

int rs_http_queue(rs_http_t *http, struct MHD_Connection *conn,
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

int rs_http_entity_page(rs_http_t *http, struct MHD_Connection *conn,
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
int rs_http_search(rs_http_t *http, struct MHD_Connection *conn,
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
int rs_http_label(rs_http_t *http, struct MHD_Connection *conn,
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

