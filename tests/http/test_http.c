/* test_http.c -- the HTTP API (scoring/http.h) against a private
 * redis-server, queried over TCP by a raw-socket HTTP/1.0 client (a client
 * that shares no code with libmicrohttpd).
 *
 * Checks: the JSON answer is the stored record byte for byte; entity lists
 * are newest first and honour since/limit; 404/405/400; the bearer token
 * (401 without or with a wrong one, /healthz open); the HTML page escapes a
 * hostile event id, counterparty and reason, and holds its SVG charts;
 * ids with "/" via %2F; Redis down -> 503, then back -> 200; parallel
 * clients on several server threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "scoring/http.h"
#include "scoring/sink.h"
#include "tests/support/rs_test_redis.h"

#define BASE_MS 1700000000000LL

static const char EVIL_ID[] = "<script>alert('x')</script>&\"";
static const char EVIL_REASON[] = "<img src=x onerror=alert(1)> amount 8.3x";
static const char EVIL_CP[] = "</text><script>bad()</script>";

/* ---------------------------------------------------------- HTTP client */

typedef struct resp_s {
    int status;
    char *head;   /* status line + headers */
    char *body;
    size_t len;
} resp_t;

static void resp_free(resp_t *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* One request over a fresh connection; HTTP/1.0 so the body ends at EOF. */
static int http_req(int port, const char *method, const char *path,
                    const char *extra_headers, resp_t *out) {
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    size_t reqcap = 256 * 1024;
    char *req = malloc(reqcap);
    int n = snprintf(req, reqcap,
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n", method,
                     path, extra_headers ? extra_headers : "");
    assert_true(n > 0 && (size_t)n < reqcap);
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, req + off, (size_t)(n - off));
        assert_true(w > 0);
        off += (int)w;
    }
    free(req);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    size_t hl = (size_t)(sep - buf);
    out->head = strndup(buf, hl);
    out->len = len - hl - 4;
    out->body = malloc(out->len + 1);
    memcpy(out->body, sep + 4, out->len);
    out->body[out->len] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &out->status), 1);
    free(buf);
    return out->status;
}

static int http_get(int port, const char *path, const char *hdrs,
                    resp_t *out) {
    return http_req(port, "GET", path, hdrs, out);
}

/* Percent-encode every byte outside [A-Za-z0-9._~-]. */
static void pct(const char *s, char *out, size_t size) {
    size_t o = 0;
    for (; *s && o + 4 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("._~-", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* -------------------------------------------------------------- fixture */

typedef struct fx_s {
    rs_test_redis_t *redis;
    rs_redis_conf_t rconf;
    rs_sink_redis_t *sink;
    rs_http_t *http;
    int port;
} fx_t;

/* A score with a full explanation. */
static void make_score(rs_score_t *sc, const char *id, const char *entity,
                       int64_t t, double score) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "%s", id);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "%s", entity);
    sc->score = (float)score; /* model outputs are float32 */
    sc->decision = score >= 0.9   ? RS_DECISION_DECLINE
                   : score >= 0.5 ? RS_DECISION_REVIEW
                                  : RS_DECISION_APPROVE;
    snprintf(sc->model_version, sizeof(sc->model_version), "seq-test-7");
    sc->event_time_ms = t;
    sc->scored_at_ms = t + 12;
    sc->latency_us = 1834;
    rs_explanation_t *ex = &sc->explanation;
    static const double w[] = {0.46, 0.27, 0.12};
    ex->n_attended = 3;
    for (int i = 0; i < 3; i++) {
        rs_attended_t *a = &ex->attended[i];
        snprintf(a->event_id, sizeof(a->event_id), "%s-past-%d", id, i);
        a->event_time_ms = t - (int64_t)(i + 1) * 3600 * 1000 * (i + 2);
        a->amount = 12.5 * (i + 1);
        snprintf(a->counterparty_id, sizeof(a->counterparty_id), "merchant-%d",
                 40 + i);
        a->weight = (float)w[i];
    }
    static const char *const names[] = {"amount_vs_30d_mean", "new_terminal_10m",
                                        "hour_of_day", "distance_km",
                                        "tx_count_1h"};
    static const double vals[] = {8.3, 3, 3, 412.5, 1};
    static const double con[] = {0.412, 0.188, 0.07, -0.093, -0.151};
    ex->n_contrib = 5;
    for (int i = 0; i < 5; i++) {
        snprintf(ex->contrib[i].name, sizeof(ex->contrib[i].name), "%s",
                 names[i]);
        ex->contrib[i].value = (float)vals[i];
        ex->contrib[i].contribution = (float)con[i];
    }
    ex->n_experts = 3;
    ex->experts[0] = (rs_expert_use_t){2, 0.71f};
    ex->experts[1] = (rs_expert_use_t){0, 0.21f};
    ex->experts[2] = (rs_expert_use_t){5, 0.08f};
    ex->n_reasons = 2;
    snprintf(ex->reasons[0], RS_REASON_MAX, "amount 8.3x this card's 30-day mean");
    snprintf(ex->reasons[1], RS_REASON_MAX, "3rd new terminal in 10 minutes");
    snprintf(ex->contrib[0].text, RS_REASON_MAX, "%s", ex->reasons[0]);
    /* the event's own fields */
    rs_event_fields_t *ef = &sc->event;
    ef->present = 1;
    snprintf(ef->type, sizeof(ef->type), "card_tx");
    snprintf(ef->counterparty_id, sizeof(ef->counterparty_id), "m-5411-77");
    ef->amount = 912.4 + score;
    ef->n_categ = 3;
    static const char *const cn[] = {"mcc", "country", "channel"},
                             *const cv[] = {"5999", "FR", "ecom"};
    for (int i = 0; i < 3; i++) {
        snprintf(ef->categ[i].name, sizeof(ef->categ[i].name), "%s", cn[i]);
        snprintf(ef->categ[i].value, sizeof(ef->categ[i].value), "%s", cv[i]);
    }
}

static void write_scores(fx_t *fx, const rs_score_t *sc, int n) {
    char errstr[512];
    rs_err_t err = rs_sink_redis_write(fx->sink, sc, n, errstr, sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "write: %s\n", errstr);
    assert_int_equal(err, RS_OK);
}

static rs_http_t *start_http(fx_t *fx, const char *token_env) {
    rs_http_conf_t hc;
    char errstr[512];
    rs_http_conf_init(&hc);
    hc.port = 0;
    hc.threads = 3;
    if (token_env) snprintf(hc.token_env, sizeof(hc.token_env), "%s", token_env);
    rs_http_t *http = rs_http_new(&hc, &fx->rconf, errstr, sizeof(errstr));
    if (!http) fprintf(stderr, "rs_http_new: %s\n", errstr);
    assert_non_null(http);
    assert_true(rs_http_port(http) > 0);
    return http;
}

static int setup(void **state) {
    char errstr[512];
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->redis = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    if (!fx->redis) {
        fprintf(stderr, "rs_test_redis_start: %s\n", errstr);
        return -1;
    }
    rs_redis_conf_init(&fx->rconf);
    snprintf(fx->rconf.url, sizeof(fx->rconf.url), "%s",
             rs_test_redis_url(fx->redis));
    fx->sink = rs_sink_redis_new(&fx->rconf, errstr, sizeof(errstr));
    if (!fx->sink) return -1;
    fx->http = start_http(fx, NULL);
    fx->port = rs_http_port(fx->http);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    rs_http_destroy(fx->http);
    rs_sink_redis_destroy(fx->sink);
    rs_test_redis_destroy(fx->redis);
    free(fx);
    return 0;
}

/* The stored text of a score key, read with a raw hiredis client. */
static char *raw_get(fx_t *fx, const char *id) {
    redisContext *c = redisConnectUnix(rs_test_redis_socket(fx->redis));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *r = redisCommand(c, "GET rs:score:%s", id);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char *s = strdup(r->str);
    freeReplyObject(r);
    redisFree(c);
    return s;
}

/* ----------------------------------------------------------------- tests */

static void test_score_json(void **state) {
    fx_t *fx = *state;
    rs_score_t sc, back;
    char errstr[256];
    resp_t r;
    make_score(&sc, "tx-1", "card-1", BASE_MS, 0.9312);
    write_scores(fx, &sc, 1);

    assert_int_equal(http_get(fx->port, "/v1/scores/tx-1", NULL, &r), 200);
    assert_non_null(strstr(r.head, "application/json"));
    /* verbatim: the JSON the scores topic gets, though Redis holds the
     * compact record (redis.record_format default) */
    char *stored = raw_get(fx, "tx-1");
    assert_int_equal((unsigned char)stored[0], RS_REDIS_REC_MAGIC);
    {
        char want[RS_ENCODE_MAX];
        int wl = rs_score_to_json(&sc, want, sizeof(want));
        assert_true(wl > 0);
        assert_int_equal(r.len, (size_t)wl);
        assert_string_equal(r.body, want);
    }
    assert_int_equal(rs_score_from_json(r.body, r.len, &back, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(back.event_id, "tx-1");
    assert_true(back.score == sc.score);
    assert_string_equal(back.model_version, "seq-test-7");
    assert_int_equal(back.explanation.n_attended, 3);
    assert_int_equal(back.explanation.n_contrib, 5);
    assert_int_equal(back.explanation.n_experts, 3);
    assert_true(back.explanation.attended[0].weight == (double)0.46f);
    free(stored);
    resp_free(&r);

    /* HEAD: same status, no body */
    assert_int_equal(http_req(fx->port, "HEAD", "/v1/scores/tx-1", NULL, &r),
                     200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
}

static void test_not_found_and_methods(void **state) {
    fx_t *fx = *state;
    resp_t r;
    assert_int_equal(http_get(fx->port, "/v1/scores/nope", NULL, &r), 404);
    assert_non_null(strstr(r.body, "\"error\""));
    assert_non_null(strstr(r.body, "no score for event 'nope'"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/scores/nope/view", NULL, &r), 404);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/", NULL, &r), 303);
    assert_non_null(strstr(r.head, "Location: /v1/alerts/view"));
    resp_free(&r);
    static const char *const missing[] = {
        "/v1", "/v1/scores/", "/v1/scores/tx-1/other", "/v1/entities/x",
        "/v1/entities/x/other", "/v2/scores/tx-1", "/healthz/x"};
    for (size_t i = 0; i < RS_ARRAY_LEN(missing); i++) {
        assert_int_equal(http_get(fx->port, missing[i], NULL, &r), 404);
        resp_free(&r);
    }
    assert_int_equal(http_get(fx->port, "/v1/scores/bad%zzid", NULL, &r), 400);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/scores/nul%00id", NULL, &r), 400);
    resp_free(&r);
    /* an id longer than any stored one */
    char longp[400] = "/v1/scores/";
    memset(longp + 11, 'a', 200);
    assert_int_equal(http_get(fx->port, longp, NULL, &r), 400);
    resp_free(&r);
    assert_int_equal(http_req(fx->port, "POST", "/v1/scores/tx-1",
                              "Content-Length: 0\r\n", &r), 405);
    assert_non_null(strstr(r.head, "Allow: GET"));
    resp_free(&r);
    assert_int_equal(http_req(fx->port, "DELETE", "/v1/scores/tx-1", NULL, &r),
                     405);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/healthz", NULL, &r), 200);
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);
    /* huge header: refused by the connection memory cap, not served */
    size_t big = 64 * 1024;
    char *hdr = malloc(big + 32);
    strcpy(hdr, "X-Big: ");
    memset(hdr + 7, 'x', big);
    strcpy(hdr + 7 + big, "\r\n");
    int fd_status = http_get(fx->port, "/healthz", hdr, &r);
    assert_true(fd_status == 431 || fd_status == 413 || fd_status == 400);
    resp_free(&r);
    free(hdr);
}

/* ids of a JSON array answer, in order */
static int array_ids(const char *body, char ids[][RS_ID_MAX], int max) {
    json_error_t je;
    json_t *a = json_loads(body, 0, &je);
    assert_non_null(a);
    assert_true(json_is_array(a));
    int n = 0;
    for (size_t i = 0; i < json_array_size(a) && n < max; i++)
        snprintf(ids[n++], RS_ID_MAX, "%s",
                 json_string_value(json_object_get(json_array_get(a, i),
                                                   "event_id")));
    json_decref(a);
    return n;
}

static void test_entity_list(void **state) {
    fx_t *fx = *state;
    rs_score_t sc[6];
    char ids[8][RS_ID_MAX], path[256];
    resp_t r;
    /* written out of time order; 5 of entity card-9, one of another */
    static const int order[] = {3, 0, 4, 1, 2};
    for (int k = 0; k < 5; k++) {
        char id[32];
        snprintf(id, sizeof(id), "e9-%d", order[k]);
        make_score(&sc[k], id, "card-9", BASE_MS + order[k] * 60000LL,
                   0.1 * order[k]);
    }
    make_score(&sc[5], "other-1", "card-10", BASE_MS, 0.2);
    write_scores(fx, sc, 6);

    assert_int_equal(http_get(fx->port, "/v1/entities/card-9/scores", NULL, &r),
                     200);
    int n = array_ids(r.body, ids, 8);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "e9-%d", 4 - i);
        assert_string_equal(ids[i], want);
    }
    resp_free(&r);

    assert_int_equal(http_get(fx->port, "/v1/entities/card-9/scores?limit=2",
                              NULL, &r), 200);
    assert_int_equal(array_ids(r.body, ids, 8), 2);
    assert_string_equal(ids[0], "e9-4");
    assert_string_equal(ids[1], "e9-3");
    resp_free(&r);

    /* since as epoch ms and as ISO (percent-encoded colons) */
    snprintf(path, sizeof(path), "/v1/entities/card-9/scores?since=%lld",
             (long long)(BASE_MS + 2 * 60000LL));
    assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
    assert_int_equal(array_ids(r.body, ids, 8), 3);
    assert_string_equal(ids[2], "e9-2");
    resp_free(&r);
    char iso[64], enc[128];
    rs_time_fmt(BASE_MS + 3 * 60000LL, iso, sizeof(iso));
    pct(iso, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/v1/entities/card-9/scores?since=%s", enc);
    assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
    assert_int_equal(array_ids(r.body, ids, 8), 2);
    resp_free(&r);
    /* a duration counts back from the entity's newest event (not from
     * the wall clock: these events are years old), as audit --since */
    assert_int_equal(http_get(fx->port, "/v1/entities/card-9/scores?since=1d",
                              NULL, &r), 200);
    assert_int_equal(array_ids(r.body, ids, 8), 5);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/entities/card-9/scores?since=90s",
                              NULL, &r), 200);
    assert_int_equal(array_ids(r.body, ids, 8), 2); /* e9-4 and e9-3 */
    assert_string_equal(ids[0], "e9-4");
    assert_string_equal(ids[1], "e9-3");
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/entities/nobody/scores?since=7d",
                              NULL, &r), 200);
    assert_string_equal(r.body, "[]\n");
    resp_free(&r);

    assert_int_equal(http_get(fx->port, "/v1/entities/nobody/scores", NULL, &r),
                     200);
    assert_string_equal(r.body, "[]\n");
    resp_free(&r);
    static const char *const bad[] = {
        "/v1/entities/card-9/scores?limit=0", "/v1/entities/card-9/scores?limit=x",
        "/v1/entities/card-9/scores?limit=100000",
        "/v1/entities/card-9/scores?since=yesterday"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        assert_int_equal(http_get(fx->port, bad[i], NULL, &r), 400);
        resp_free(&r);
    }
}

static void test_view_escapes(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    char path[512], enc[256];
    resp_t r;
    make_score(&sc, EVIL_ID, "card-<b>", BASE_MS, 0.97);
    snprintf(sc.explanation.reasons[1], RS_REASON_MAX, "%s", EVIL_REASON);
    snprintf(sc.explanation.attended[0].counterparty_id, RS_ID_MAX, "%s",
             EVIL_CP);
    snprintf(sc.explanation.contrib[0].name, sizeof(sc.explanation.contrib[0].name),
             "<svg onload=x>");
    snprintf(sc.event.categ[0].value, sizeof(sc.event.categ[0].value),
             "<iframe src=x>");
    snprintf(sc.event.counterparty_id, sizeof(sc.event.counterparty_id), "%s",
             EVIL_CP);
    write_scores(fx, &sc, 1);
    pct(EVIL_ID, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/v1/scores/%s/view", enc);
    assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
    assert_non_null(strstr(r.head, "text/html"));
    assert_non_null(strstr(r.head, "Content-Security-Policy: default-src 'none'"));
    /* nothing hostile survives unescaped: the one script is ours */
    assert_non_null(strstr(r.body, "<script src=\"/static/rs.js\" defer>"));
    assert_null(strstr(strstr(r.body, "<script") + 1, "<script"));
    assert_null(strstr(r.body, "<img"));
    assert_null(strstr(r.body, "<svg onload"));
    assert_null(strstr(r.body, "<b>"));
    assert_null(strstr(r.body, "<iframe"));
    assert_non_null(strstr(r.body, "&lt;iframe src=x&gt;"));
    assert_non_null(strstr(r.body, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    assert_non_null(strstr(r.body, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(r.body, "&lt;/text&gt;&lt;script&gt;bad()"));
    /* the pictures and the facts */
    assert_non_null(strstr(r.body, "<svg id=\"timeline\""));
    assert_non_null(strstr(r.body, "<table class=\"contrib\" id=\"contrib\""));
    assert_non_null(strstr(r.body, "<svg id=\"experts\""));
    assert_non_null(strstr(r.body, "class=\"bar pos\""));
    assert_non_null(strstr(r.body, "class=\"bar neg\""));
    assert_non_null(strstr(r.body, "#d62728")); /* red: raises risk */
    assert_non_null(strstr(r.body, "#1f77b4")); /* blue: lowers risk */
    assert_non_null(strstr(r.body, "decline"));
    assert_non_null(strstr(r.body, "seq-test-7"));
    assert_non_null(strstr(r.body, "amount 8.3x this card&#39;s 30-day mean"));
    int circles = 0;
    for (const char *p = r.body; (p = strstr(p, "<circle")); p++) circles++;
    assert_int_equal(circles, 3);
    /* no external asset of any kind: one same-origin script */
    assert_null(strstr(r.body, "http://"));
    assert_null(strstr(r.body, "https://"));
    const char *src = strstr(r.body, " src=\"");
    assert_non_null(src);
    assert_int_equal(strncmp(src, " src=\"/static/rs.js\"", 20), 0);
    assert_null(strstr(src + 1, " src=\""));
    assert_null(strstr(r.body, "href=\"http"));
    assert_non_null(strstr(r.head, "script-src 'self'"));
    resp_free(&r);

    /* and the JSON answer for the same encoded id */
    snprintf(path, sizeof(path), "/v1/scores/%s", enc);
    assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
    resp_free(&r);

    /* an id holding "/" */
    make_score(&sc, "acq/2026/77", "card-1", BASE_MS, 0.1);
    write_scores(fx, &sc, 1);
    assert_int_equal(http_get(fx->port, "/v1/scores/acq%2F2026%2F77", NULL, &r),
                     200);
    assert_non_null(strstr(r.body, "\"acq/2026/77\""));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/scores/acq%2F2026%2F77/view", NULL,
                              &r), 200);
    resp_free(&r);
}

static void test_token(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    resp_t r;
    char errstr[256];
    rs_http_conf_t hc;
    make_score(&sc, "tok-1", "card-1", BASE_MS, 0.4);
    write_scores(fx, &sc, 1);

    /* the variable must be set */
    unsetenv("RS_TEST_HTTP_TOKEN");
    rs_http_conf_init(&hc);
    hc.port = 0;
    snprintf(hc.token_env, sizeof(hc.token_env), "RS_TEST_HTTP_TOKEN");
    assert_null(rs_http_new(&hc, &fx->rconf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "RS_TEST_HTTP_TOKEN"));

    setenv("RS_TEST_HTTP_TOKEN", "s3cret-T0ken", 1);
    rs_http_t *h = start_http(fx, "RS_TEST_HTTP_TOKEN");
    int port = rs_http_port(h);
    assert_int_equal(http_get(port, "/v1/scores/tok-1", NULL, &r), 401);
    assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    static const char *const wrong[] = {
        "Authorization: Bearer s3cret-T0ke\r\n",
        "Authorization: Bearer s3cret-T0ken2\r\n",
        "Authorization: Bearer S3cret-T0ken\r\n",
        "Authorization: Basic s3cret-T0ken\r\n",
        "Authorization: Bearer \r\n"};
    for (size_t i = 0; i < RS_ARRAY_LEN(wrong); i++) {
        assert_int_equal(http_get(port, "/v1/scores/tok-1", wrong[i], &r), 401);
        resp_free(&r);
    }
    assert_int_equal(http_get(port, "/v1/scores/tok-1",
                              "Authorization: Bearer s3cret-T0ken\r\n", &r),
                     200);
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/scores/tok-1/view",
                              "authorization: bearer s3cret-T0ken\r\n", &r),
                     200);
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/scores/missing",
                              "Authorization: Bearer s3cret-T0ken\r\n", &r),
                     404);
    resp_free(&r);
    assert_int_equal(http_get(port, "/healthz", NULL, &r), 200); /* probes */
    resp_free(&r);
    rs_http_destroy(h);
    unsetenv("RS_TEST_HTTP_TOKEN");
}

static int metrics_route(void *opaque, const char *path, rs_http_buf_t *body,
                         const char **ctype) {
    (*(int *)opaque)++;
    rs_http_buf_printf(body, "rs_test_metric 1\npath %s\n", path);
    *ctype = "text/plain; version=0.0.4";
    return 200;
}

static void test_extra_route(void **state) {
    fx_t *fx = *state;
    static int calls;
    resp_t r;
    assert_int_equal(rs_http_add_route(fx->http, "metrics", metrics_route,
                                       &calls), RS_ERR_INVALID);
    assert_int_equal(rs_http_add_route(fx->http, "/metrics", metrics_route,
                                       &calls), RS_OK);
    assert_int_equal(http_get(fx->port, "/metrics", NULL, &r), 200);
    assert_non_null(strstr(r.body, "rs_test_metric 1"));
    assert_non_null(strstr(r.head, "version=0.0.4"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/metricsx", NULL, &r), 404);
    resp_free(&r);
    assert_int_equal(calls, 1);
}

static void test_redis_outage(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    resp_t r;
    char errstr[512];
    make_score(&sc, "out-1", "card-1", BASE_MS, 0.4);
    write_scores(fx, &sc, 1);
    assert_int_equal(rs_test_redis_stop(fx->redis), 0);
    assert_int_equal(http_get(fx->port, "/v1/scores/out-1", NULL, &r), 503);
    assert_non_null(strstr(r.body, "unavailable"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/healthz", NULL, &r), 200);
    resp_free(&r);
    assert_int_equal(rs_test_redis_restart(fx->redis, errstr, sizeof(errstr)), 0);
    /* no persistence: the record is gone, but the API reconnects */
    for (int i = 0; i < 6; i++) { /* every pool thread reconnects */
        assert_int_equal(http_get(fx->port, "/v1/scores/out-1", NULL, &r), 404);
        resp_free(&r);
    }
    rs_sink_redis_destroy(fx->sink);
    fx->sink = rs_sink_redis_new(&fx->rconf, errstr, sizeof(errstr));
    assert_non_null(fx->sink);
    write_scores(fx, &sc, 1);
    assert_int_equal(http_get(fx->port, "/v1/scores/out-1", NULL, &r), 200);
    resp_free(&r);
}

typedef struct par_s {
    int port, ok;
} par_t;

static void *par_client(void *arg) {
    par_t *p = arg;
    for (int i = 0; i < 40; i++) {
        resp_t r;
        const char *path = i % 2 ? "/v1/scores/par-1" : "/v1/scores/par-1/view";
        if (http_get(p->port, path, NULL, &r) == 200 &&
            strstr(r.body, "par-1"))
            p->ok++;
        resp_free(&r);
    }
    return NULL;
}

static void test_parallel(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    make_score(&sc, "par-1", "card-1", BASE_MS, 0.6);
    write_scores(fx, &sc, 1);
    pthread_t th[6];
    par_t p[6];
    for (int i = 0; i < 6; i++) {
        p[i] = (par_t){fx->port, 0};
        assert_int_equal(pthread_create(&th[i], NULL, par_client, &p[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].ok, 40);
    }
}

/* ------------------------------------------------------- analysts' pages */

/* A label sender that records what it was given (or fails). */
typedef struct lab_s {
    pthread_mutex_t mu;
    int n, fail;
    rs_label_t last;
} lab_t;

static rs_err_t fake_labeler(void *opaque, const rs_label_t *lb, char *errstr,
                             size_t errstr_size) {
    lab_t *l = opaque;
    pthread_mutex_lock(&l->mu);
    int fail = l->fail;
    if (!fail) {
        l->n++;
        l->last = *lb;
    }
    pthread_mutex_unlock(&l->mu);
    if (fail) {
        snprintf(errstr, errstr_size, "broker down (test)");
        return RS_ERR_TIMEOUT;
    }
    return RS_OK;
}

static int count_str(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* The case view: the event's fields, the entity's recent events as links
 * (this one highlighted), attended events as links, reasons with their
 * signed contribution, the label buttons (disabled without a sender). */
static void test_case_view(void **state) {
    fx_t *fx = *state;
    rs_score_t sc[8];
    resp_t r;
    for (int i = 0; i < 8; i++) {
        char id[32];
        snprintf(id, sizeof(id), "cv-%d", i);
        make_score(&sc[i], id, "card-77", BASE_MS + i * 60000LL,
                   i == 5 ? 0.95 : 0.1 + 0.05 * i);
    }
    write_scores(fx, sc, 8);
    assert_int_equal(http_get(fx->port, "/v1/scores/cv-5/view", NULL, &r), 200);
    /* the event itself */
    assert_non_null(strstr(r.body, "<dl class=\"fields\" id=\"event-fields\">"));
    assert_non_null(strstr(r.body, "<dd class=\"f-amount\">913.35</dd>"));
    assert_non_null(strstr(r.body, "<dt>mcc</dt><dd class=\"f-cat\">5999</dd>"));
    assert_non_null(strstr(r.body, "<dt>country</dt><dd class=\"f-cat\">FR</dd>"));
    assert_non_null(strstr(r.body, "<dt>channel</dt><dd class=\"f-cat\">ecom"));
    assert_non_null(strstr(r.body, "m-5411-77"));
    assert_non_null(strstr(r.body, "card_tx"));
    /* an amount trend over the entity's events */
    assert_non_null(strstr(r.body, "<div class=\"trends\" id=\"trends\">"));
    /* history: 6 at or before it, 2 after, as links; this one marked */
    const char *h = strstr(r.body, "<table class=\"list\" id=\"history\">");
    assert_non_null(h);
    assert_int_equal(count_str(h, "<tr data-id=") +
                         count_str(h, "<tr class=\"cur\" data-id="), 8);
    assert_non_null(strstr(h, "<tr class=\"cur\" data-id=\"cv-5\""));
    assert_non_null(strstr(h, "href=\"/v1/scores/cv-7/view\""));
    assert_non_null(strstr(h, "href=\"/v1/scores/cv-0/view\""));
    assert_non_null(strstr(r.body, "2 newer, this one highlighted"));
    assert_non_null(strstr(r.body, "href=\"/v1/entities/card-77/view\""));
    /* attended events are links */
    assert_non_null(strstr(r.body, "href=\"/v1/scores/cv-5-past-0/view\""));
    /* a reason carries the contribution it is */
    assert_non_null(strstr(r.body, "amount 8.3x this card&#39;s 30-day mean "
                                   "<span class=\"num pos\">+0.412</span>"));
    assert_non_null(strstr(r.body, "<td class=\"num pos\">+0.412 raises</td>"));
    assert_non_null(strstr(r.body, "<td class=\"num neg\">-0.151 lowers</td>"));
    /* open, buttons disabled: no label sender */
    assert_non_null(strstr(r.body, "Open: no analyst outcome yet."));
    assert_non_null(strstr(r.body, "data-outcome=\"fraud\" disabled"));
    assert_non_null(strstr(r.body, "labelling is off"));
    /* the search box on every page */
    assert_non_null(strstr(r.body, "<form class=\"search\" action=\"/v1/search\""));
    resp_free(&r);

    /* the entity page: newest first, links, pages of 50 */
    rs_score_t many[60];
    for (int i = 0; i < 60; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ep-%02d", i);
        make_score(&many[i], id, "card-88", BASE_MS + i * 1000LL, 0.3);
    }
    write_scores(fx, many, 60);
    assert_int_equal(http_get(fx->port, "/v1/entities/card-88/view", NULL, &r),
                     200);
    const char *t = strstr(r.body, "id=\"events\"");
    assert_non_null(t);
    assert_int_equal(count_str(t, "<tr data-id="), 50);
    assert_true(strstr(t, "data-id=\"ep-59\"") < strstr(t, "data-id=\"ep-58\""));
    assert_null(strstr(t, "data-id=\"ep-09\""));
    const char *older = strstr(r.body, "id=\"older\" href=\"");
    assert_non_null(older);
    char next[256];
    sscanf(older + strlen("id=\"older\" href=\""), "%255[^\"]", next);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, next, NULL, &r), 200);
    t = strstr(r.body, "id=\"events\"");
    assert_int_equal(count_str(t, "<tr data-id="), 10);
    assert_non_null(strstr(t, "data-id=\"ep-09\""));
    assert_non_null(strstr(t, "data-id=\"ep-00\""));
    assert_null(strstr(r.body, "id=\"older\""));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/entities/nobody/view", NULL, &r),
                     200);
    assert_non_null(strstr(r.body, "id=\"empty\""));
    resp_free(&r);
}

/* ids of a /v1/alerts answer, in order; *next gets next_before or "" */
static int alert_ids(const char *body, char ids[][RS_ID_MAX], int max,
                     char *next, size_t next_size) {
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    if (!o) fail_msg("not JSON: %s (%s)", body, je.text);
    json_t *a = json_object_get(o, "alerts");
    assert_true(json_is_array(a));
    int n = 0;
    for (size_t i = 0; i < json_array_size(a) && n < max; i++) {
        json_t *rec = json_object_get(json_array_get(a, i), "record");
        snprintf(ids[n++], RS_ID_MAX, "%s",
                 json_string_value(json_object_get(rec, "event_id")));
    }
    json_t *nx = json_object_get(o, "next_before");
    if (next) snprintf(next, next_size, "%s",
                       json_is_string(nx) ? json_string_value(nx) : "");
    json_decref(o);
    return n;
}

/* The alert queue: only review/decline/alert, newest first, filters,
 * pages that chain through everything once. */
static void test_alert_queue(void **state) {
    fx_t *fx = *state;
    static rs_score_t sc[90];
    static char ids[128][RS_ID_MAX];
    char path[512], next[256], enc[256];
    resp_t r;
    /* 90 events of 3 entities; scores cycle so 1 in 3 is approve */
    int nalert = 0;
    for (int i = 0; i < 90; i++) {
        char id[32], ent[32];
        snprintf(id, sizeof(id), "q-%02d", i);
        snprintf(ent, sizeof(ent), "card-q%d", i % 3);
        double score = (i % 3 == 0) ? 0.2 : (i % 3 == 1) ? 0.6 : 0.95;
        make_score(&sc[i], id, ent, BASE_MS + i * 60000LL, score);
        if (i == 40) sc[i].decision = RS_DECISION_ALERT; /* a sensor alert */
        nalert += sc[i].decision != RS_DECISION_APPROVE;
    }
    write_scores(fx, sc, 90);
    assert_int_equal(http_get(fx->port, "/v1/alerts?limit=500", NULL, &r), 200);
    assert_non_null(strstr(r.head, "application/json"));
    int n = alert_ids(r.body, ids, 128, next, sizeof(next));
    assert_int_equal(n, nalert);
    assert_string_equal(next, "");
    assert_string_equal(ids[0], "q-89");
    for (int i = 1; i < n; i++) assert_true(strcmp(ids[i - 1], ids[i]) > 0);
    resp_free(&r);

    /* pages of 7 chain through all of them, once each */
    int total = 0;
    snprintf(path, sizeof(path), "/v1/alerts?limit=7");
    for (int page = 0; page < 40; page++) {
        assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
        char got[8][RS_ID_MAX];
        int k = alert_ids(r.body, got, 8, next, sizeof(next));
        resp_free(&r);
        for (int i = 0; i < k; i++)
            assert_string_equal(got[i], ids[total + i]);
        total += k;
        if (!next[0]) break;
        assert_int_equal(k, 7);
        pct(next, enc, sizeof(enc));
        snprintf(path, sizeof(path), "/v1/alerts?limit=7&before=%s", enc);
    }
    assert_int_equal(total, nalert);

    /* decision, min score, entity, time range */
    assert_int_equal(http_get(fx->port, "/v1/alerts?decision=decline", NULL, &r),
                     200);
    n = alert_ids(r.body, ids, 128, NULL, 0);
    assert_int_equal(n, 30);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/alerts?decision=alert,review", NULL,
                              &r), 200);
    n = alert_ids(r.body, ids, 128, NULL, 0);
    assert_int_equal(n, 30);
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/alerts?min_score=0.9&entity=card-q2",
                              NULL, &r), 200);
    n = alert_ids(r.body, ids, 128, NULL, 0);
    assert_int_equal(n, 30);
    for (int i = 0; i < n; i++) {
        int k = atoi(ids[i] + 2);
        assert_int_equal(k % 3, 2);
    }
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/alerts?since=%lld&until=%lld",
             (long long)(BASE_MS + 10 * 60000LL),
             (long long)(BASE_MS + 19 * 60000LL));
    assert_int_equal(http_get(fx->port, path, NULL, &r), 200);
    n = alert_ids(r.body, ids, 128, NULL, 0);
    assert_int_equal(n, 7); /* 10..19 less the approves 12, 15, 18 */
    assert_string_equal(ids[0], "q-19");
    assert_string_equal(ids[6], "q-10");
    resp_free(&r);
    /* bad filters are 400, naming the parameter */
    static const char *const bad[] = {
        "/v1/alerts?decision=approve", "/v1/alerts?min_score=2",
        "/v1/alerts?since=yesterday", "/v1/alerts?status=maybe",
        "/v1/alerts?limit=0", "/v1/alerts?before=xyz"};
    static const char *const names[] = {"decision", "min_score", "since",
                                        "status", "limit", "before"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        assert_int_equal(http_get(fx->port, bad[i], NULL, &r), 400);
        assert_non_null(strstr(r.body, names[i]));
        resp_free(&r);
    }
    /* the page: same rows, a filter form, an "older" link */
    assert_int_equal(http_get(fx->port, "/v1/alerts/view?decision=decline&limit=5",
                              NULL, &r), 200);
    assert_non_null(strstr(r.head, "text/html"));
    assert_non_null(strstr(r.body, "<form class=\"filters\" id=\"filters\""));
    assert_non_null(strstr(r.body, "<option value=\"decline\" selected>"));
    const char *q = strstr(r.body, "<table class=\"list\" id=\"queue\">");
    assert_non_null(q);
    assert_int_equal(count_str(q, "<tr data-id="), 5);
    assert_non_null(strstr(q, "href=\"/v1/scores/q-89/view\""));
    assert_non_null(strstr(q, "href=\"/v1/entities/card-q2/view\""));
    assert_non_null(strstr(r.body, "id=\"older\" href=\"/v1/alerts/view?"
                                   "decision=decline&amp;limit=5&amp;before="));
    resp_free(&r);
}

/* The label action: JSON only, the token header (never the cookie),
 * cross-site refused, one outcome per event, Label handed to the sender,
 * the claim undone when the sender fails. */
static void test_label_action(void **state) {
    fx_t *fx = *state;
    rs_score_t sc[3];
    resp_t r;
    static lab_t lab = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}};
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "lb-%d", i);
        make_score(&sc[i], id, "card-lb", BASE_MS + i * 1000LL, 0.93);
    }
    write_scores(fx, sc, 3);
    const char *json_hdr = "Content-Type: application/json\r\n";
    const char *body_fraud = "{\"outcome\":\"fraud\",\"analyst\":\"Ana <b>\","
                             "\"note\":\"customer confirmed\"}";
    char req[1024];
    /* no sender yet: 503 */
    snprintf(req, sizeof(req), "%sContent-Length: %zu\r\n\r\n%s", json_hdr,
             strlen(body_fraud), body_fraud);
    assert_int_equal(http_req(fx->port, "POST", "/v1/scores/lb-0/label", req,
                              &r), 503);
    assert_non_null(strstr(r.body, "labelling is not configured"));
    resp_free(&r);

    setenv("RS_TEST_HTTP_TOKEN", "tok-L4bel", 1);
    rs_http_t *h = start_http(fx, "RS_TEST_HTTP_TOKEN");
    rs_http_set_labeler(h, fake_labeler, &lab, "labels");
    int port = rs_http_port(h);
    const char *auth = "Authorization: Bearer tok-L4bel\r\n";
    /* the cookie is not enough for a POST (a cross-site form would send
     * it), nor is a form body */
    snprintf(req, sizeof(req), "Cookie: rs_token=tok-L4bel\r\n%s"
             "Content-Length: %zu\r\n\r\n%s", json_hdr, strlen(body_fraud),
             body_fraud);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req, &r),
                     401);
    resp_free(&r);
    snprintf(req, sizeof(req), "%sContent-Type: application/x-www-form-"
             "urlencoded\r\nContent-Length: 13\r\n\r\noutcome=fraud", auth);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req, &r),
                     415);
    resp_free(&r);
    snprintf(req, sizeof(req), "%s%sOrigin: http://evil.example\r\n"
             "Content-Length: %zu\r\n\r\n%s", auth, json_hdr,
             strlen(body_fraud), body_fraud);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req, &r),
                     403);
    resp_free(&r);
    snprintf(req, sizeof(req), "%s%sSec-Fetch-Site: cross-site\r\n"
             "Content-Length: %zu\r\n\r\n%s", auth, json_hdr,
             strlen(body_fraud), body_fraud);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req, &r),
                     403);
    resp_free(&r);
    static const char *const badb[] = {"{\"outcome\":\"maybe\"}", "[1]",
                                       "not json", "{\"outcome\":1}",
                                       "{\"outcome\":\"fraud\",\"note\":7}"};
    for (size_t i = 0; i < RS_ARRAY_LEN(badb); i++) {
        snprintf(req, sizeof(req), "%s%sContent-Length: %zu\r\n\r\n%s", auth,
                 json_hdr, strlen(badb[i]), badb[i]);
        assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req,
                                  &r), 400);
        resp_free(&r);
    }
    assert_int_equal(lab.n, 0);
    /* unknown event */
    snprintf(req, sizeof(req), "%s%sContent-Length: %zu\r\n\r\n%s", auth,
             json_hdr, strlen(body_fraud), body_fraud);
    assert_int_equal(http_req(port, "POST", "/v1/scores/nope/label", req, &r),
                     404);
    resp_free(&r);
    /* the real thing, same-origin */
    char req2[1200];
    snprintf(req2, sizeof(req2), "Origin: http://127.0.0.1\r\n%s", req);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req2, &r),
                     200);
    assert_non_null(strstr(r.body, "\"outcome\":\"fraud\""));
    assert_non_null(strstr(r.body, "\"value\":1"));
    resp_free(&r);
    assert_int_equal(lab.n, 1);
    assert_string_equal(lab.last.event_id, "lb-0");
    assert_string_equal(lab.last.entity_id, "card-lb");
    assert_true(lab.last.value == 1);
    assert_true(lab.last.label_time_ms > BASE_MS);
    /* a second label of the same event: 409, nothing sent */
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-0/label", req, &r),
                     409);
    resp_free(&r);
    assert_int_equal(lab.n, 1);
    /* the outcome, as JSON and on the case view (cookie for GETs) */
    assert_int_equal(http_get(port, "/v1/scores/lb-0/outcome", auth, &r), 200);
    assert_non_null(strstr(r.body, "\"analyst\":\"Ana <b>\""));
    assert_non_null(strstr(r.body, "\"topic\":\"labels\""));
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/scores/lb-0/view",
                              "Cookie: rs_token=tok-L4bel\r\n", &r), 200);
    assert_non_null(strstr(r.body, "id=\"verdict\" data-outcome=\"fraud\""));
    assert_non_null(strstr(r.body, "Ana &lt;b&gt;"));
    assert_non_null(strstr(r.body, "customer confirmed"));
    assert_null(strstr(r.body, "id=\"label-form\""));
    resp_free(&r);
    /* genuine */
    const char *body_g = "{\"outcome\":\"genuine\"}";
    snprintf(req, sizeof(req), "%s%sContent-Length: %zu\r\n\r\n%s", auth,
             json_hdr, strlen(body_g), body_g);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-1/label", req, &r),
                     200);
    resp_free(&r);
    assert_true(lab.last.value == 0);
    /* the queue shows both outcomes and filters on them */
    assert_int_equal(http_get(port, "/v1/alerts?status=labelled", auth, &r), 200);
    char ids[8][RS_ID_MAX];
    assert_int_equal(alert_ids(r.body, ids, 8, NULL, 0), 2);
    assert_non_null(strstr(r.body, "\"outcome\":{\"event_id\":\"lb-1\""));
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/alerts?status=open&entity=card-lb",
                              auth, &r), 200);
    assert_int_equal(alert_ids(r.body, ids, 8, NULL, 0), 1);
    assert_string_equal(ids[0], "lb-2");
    resp_free(&r);
    /* the sender fails: 503, and nothing is recorded (it can be retried) */
    pthread_mutex_lock(&lab.mu);
    lab.fail = 1;
    pthread_mutex_unlock(&lab.mu);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-2/label", req, &r),
                     503);
    assert_non_null(strstr(r.body, "broker down"));
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/scores/lb-2/outcome", auth, &r), 404);
    resp_free(&r);
    pthread_mutex_lock(&lab.mu);
    lab.fail = 0;
    pthread_mutex_unlock(&lab.mu);
    assert_int_equal(http_req(port, "POST", "/v1/scores/lb-2/label", req, &r),
                     200);
    resp_free(&r);
    assert_int_equal(lab.n, 3);
    rs_http_destroy(h);
    unsetenv("RS_TEST_HTTP_TOKEN");
}

/* Search by event id, then by entity id, else "nothing found". */
static void test_search(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    resp_t r;
    make_score(&sc, "find/me 1", "card-find", BASE_MS, 0.7);
    write_scores(fx, &sc, 1);
    assert_int_equal(http_get(fx->port, "/v1/search?q=find%2Fme+1", NULL, &r),
                     303);
    assert_non_null(strstr(r.head, "Location: /v1/scores/find%2Fme%201/view"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/search?q=+card-find+", NULL, &r),
                     303);
    assert_non_null(strstr(r.head, "Location: /v1/entities/card-find/view"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/search?q=%3Cnothing%3E", NULL, &r),
                     404);
    assert_non_null(strstr(r.head, "text/html"));
    assert_non_null(strstr(r.body, "id=\"notfound\""));
    assert_non_null(strstr(r.body, "&lt;nothing&gt;"));
    resp_free(&r);
    assert_int_equal(http_get(fx->port, "/v1/search?q=", NULL, &r), 303);
    assert_non_null(strstr(r.head, "Location: /v1/alerts/view"));
    resp_free(&r);
}

/* The token on every JSON endpoint (401 without), the cookie for GETs,
 * the sign-in page for pages, the open routes. */
static void test_token_routes(void **state) {
    fx_t *fx = *state;
    rs_score_t sc;
    resp_t r;
    make_score(&sc, "tr-1", "card-tr", BASE_MS, 0.95);
    write_scores(fx, &sc, 1);
    setenv("RS_TEST_HTTP_TOKEN", "t0k/en =;x", 1);
    rs_http_t *h = start_http(fx, "RS_TEST_HTTP_TOKEN");
    int port = rs_http_port(h);
    static const char *const json[] = {
        "/v1/scores/tr-1", "/v1/scores/tr-1/outcome", "/v1/alerts",
        "/v1/entities/card-tr/scores"};
    for (size_t i = 0; i < RS_ARRAY_LEN(json); i++) {
        assert_int_equal(http_get(port, json[i], NULL, &r), 401);
        assert_non_null(strstr(r.head, "application/json"));
        resp_free(&r);
        assert_int_equal(http_get(port, json[i],
                                  "Authorization: Bearer t0k/en =;x\r\n", &r),
                         strstr(json[i], "outcome") ? 404 : 200);
        resp_free(&r);
        /* the cookie holds the token percent-encoded, as the page sets it */
        assert_int_equal(http_get(port, json[i],
                                  "Cookie: a=b; rs_token=t0k%2Fen%20%3D%3Bx\r\n",
                                  &r),
                         strstr(json[i], "outcome") ? 404 : 200);
        resp_free(&r);
        assert_int_equal(http_get(port, json[i], "Cookie: rs_token=wrong\r\n",
                                  &r), 401);
        resp_free(&r);
    }
    static const char *const pages[] = {
        "/v1/scores/tr-1/view", "/v1/alerts/view", "/v1/entities/card-tr/view",
        "/v1/search"};
    for (size_t i = 0; i < RS_ARRAY_LEN(pages); i++) {
        assert_int_equal(http_get(port, pages[i], NULL, &r), 401);
        assert_non_null(strstr(r.head, "text/html"));
        assert_non_null(strstr(r.body, "<form id=\"login\" data-next=\""));
        assert_null(strstr(r.body, "tr-1\""));   /* nothing of the data */
        resp_free(&r);
    }
    assert_int_equal(http_get(port, "/v1/scores/tr-1/view",
                              "Cookie: rs_token=wrong\r\n", &r), 401);
    assert_non_null(strstr(r.body, "id=\"login-failed\""));
    resp_free(&r);
    assert_int_equal(http_get(port, "/v1/scores/tr-1/view",
                              "Cookie: rs_token=t0k%2Fen%20%3D%3Bx\r\n", &r),
                     200);
    assert_non_null(strstr(r.body, "id=\"signout\""));
    resp_free(&r);
    /* open: probes, the sign-in page and its script; a foreign "next" is
     * never a target */
    assert_int_equal(http_get(port, "/login?next=%2F%2Fevil.example", NULL, &r),
                     200);
    assert_non_null(strstr(r.body, "data-next=\"/v1/alerts/view\""));
    resp_free(&r);
    assert_int_equal(http_get(port, "/static/rs.js", NULL, &r), 200);
    assert_non_null(strstr(r.head, "text/javascript"));
    assert_non_null(strstr(r.body, "Authorization = 'Bearer '"));
    resp_free(&r);
    rs_http_destroy(h);
    unsetenv("RS_TEST_HTTP_TOKEN");
}

static void test_since_parse(void **state) {
    (void)state;
    int64_t t;
    const int64_t now = 1800000000000LL;
    assert_int_equal(rs_http_since_parse("7d", now, &t), 0);
    assert_true(t == now - 7 * 86400000LL);
    assert_int_equal(rs_http_since_parse("90m", now, &t), 0);
    assert_true(t == now - 90 * 60000LL);
    assert_int_equal(rs_http_since_parse("1700000000", now, &t), 0);
    assert_true(t == 1700000000000LL);
    assert_int_equal(rs_http_since_parse("1700000000123", now, &t), 0);
    assert_true(t == 1700000000123LL);
    assert_int_equal(rs_http_since_parse("2023-11-14T22:13:20Z", now, &t), 0);
    assert_true(t == 1700000000000LL);
    assert_int_equal(rs_http_since_parse("", now, &t), -1);
    assert_int_equal(rs_http_since_parse("soon", now, &t), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_since_parse),
        cmocka_unit_test_setup_teardown(test_score_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_methods, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_entity_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_routes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
