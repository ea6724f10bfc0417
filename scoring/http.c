/* http.c -- the HTTP API's server: configuration, the response buffer,
 * request parsing, authentication and dispatch (see http.h).  Along the
 * data flow of a request: this file (the libmicrohttpd callback: method,
 * body, token, path) -> http_routes.c (one function per route) ->
 * http_read.c (the Redis reads behind it) -> http_pages.c (the HTML) or
 * JSON; their shared internals are http_srv.h.
 *
 * Design: libmicrohttpd with an internal thread pool; a GET is answered on
 * its first call (a body is refused), a POST once its body is in (up to
 * RS_HTTP_POST_MAX bytes, kept in per-request state freed by the
 * completion callback).  The URL reaches the handler still percent-encoded
 * (a no-op unescape callback): the path is split on "/" first and each
 * segment decoded on its own, so an id may hold "/" or "?".  Query values
 * are decoded the same way.
 *
 * Redis (one connection per server thread) and its scans: http_read.c;
 * the label action: http_routes.c.  Nothing is shared between threads but
 * the immutable configuration, the route table and the label sender
 * (under a mutex).
 */
#include "scoring/http_srv.h"

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
int rs_http_pct_decode(const char *src, size_t len, int plus, char *out,
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

int rs_http_all_digits(const char *s) {
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

int rs_http_error(rs_http_buf_t *b, const char **ctype, int status,
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
int rs_http_redis_error(rs_http_buf_t *b, const char **ctype,
                        rs_err_t err, const char *errstr) {
    rs_warn("http", "redis: %s", errstr);
    return rs_http_error(b, ctype, err == RS_ERR_IO ? 503 : 500,
                         "score store unavailable (%s)", rs_err_str(err));
}

/* A query argument, percent-decoded into out[size] ("" if absent).
 * -1 if it does not decode or fit. */
int rs_http_arg(struct MHD_Connection *conn, const char *name,
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

