/* http_read.c -- the Redis reads behind the HTTP API's routes (see
 * http_srv.h): each server thread's connection, one record, the records
 * and outcomes of a list of ids, and the filtered, cursor-paged scan of
 * an index (the alert queue, an entity's history).
 *
 * Redis: one rs_sink_redis_t per server thread, created on first use and
 * kept in thread-specific data whose destructor closes it when
 * MHD_stop_daemon joins the thread.  Lists read an index newest first,
 * then the records and outcomes of a chunk with two MGETs; filters run on
 * the decoded records, at most RS_HTTP_SCAN_MAX index entries per
 * request, and pages continue from a (time, id) cursor.
 *
 * Threads: any server thread, on its own connection.
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

void rs_http_tls_free(void *p) { rs_sink_redis_destroy(p); }

/* This thread's Redis connection, created on first use.  @locality a
 * server thread */
rs_sink_redis_t *rs_http_sink(rs_http_t *http, char *errstr,
                              size_t errstr_size) {
    rs_sink_redis_t *sink = pthread_getspecific(http->tls);
    if (sink) return sink;
    sink = rs_sink_redis_new(&http->redis, errstr, errstr_size);
    if (sink) pthread_setspecific(http->tls, sink);
    return sink;
}


rs_err_t rs_http_get_score(rs_http_t *http, const char *id, char *json,
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

/* --------------------------------------------------------- loading rows */


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

void rs_http_rows_free(rs_http_rows_t *r) {
    for (int i = 0; i < r->n; i++) {
        if (r->sc) free(r->sc[i]);
        if (r->raw) free(r->raw[i]);
    }
    free(r->sc);
    free(r->raw);
    free(r->out);
    memset(r, 0, sizeof(*r));
}

rs_err_t rs_http_rows_load(rs_http_t *http, const char *const *ids,
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


void rs_http_scan_free(rs_http_scan_t *s) {
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

rs_err_t rs_http_scan(rs_http_t *http, rs_http_scan_t *s, char *errstr,
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

