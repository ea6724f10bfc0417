/* test_redis_tls.c -- rediss:// against a real redis-server 7 with TLS
 * (--tls-port), using throwaway certificates made by
 * tests/support/tls_certs.sh (a test CA, a server certificate for
 * localhost / 127.0.0.1, a client certificate, an unrelated CA).
 *
 *  - round trip through the sink (owner connection and writer thread) and
 *    through a raw hiredis context on the pump: a 4 MiB value both ways,
 *    5000 pipelined commands; every pump thread ends after the close;
 *  - verification: the wrong CA, the system store and a wrong server name
 *    are refused with a message naming the cause; tls_verify=false and an
 *    IP address in the certificate's SAN connect;
 *  - the server stopped and started again: reads fail (I/O), the writer
 *    keeps what was queued during the outage and writes it after;
 *  - a server that requires client certificates: refused without one,
 *    accepted with tls_cert_file / tls_key_file.
 *
 * Ports: redis-server cannot pick an ephemeral TLS port itself, so the
 * test asks the kernel for a free one and retries on a clash.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "scoring/redis_tls.h"
#include "scoring/sink.h"
#include "tests/support/rs_test_redis.h"

typedef struct fx_s {
    char certs[64];          /* temp dir with the PEM files              */
    char path[8][160];       /* scratch for file names                   */
    rs_test_redis_t *r;      /* TLS server, clients optional             */
    int port;
} fx_t;

static const char *cert(fx_t *fx, int slot, const char *name) {
    snprintf(fx->path[slot], sizeof(fx->path[slot]), "%s/%s", fx->certs,
             name);
    return fx->path[slot];
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* A TLS redis-server; auth_clients "no" or "yes". */
static rs_test_redis_t *start_tls(fx_t *fx, const char *auth_clients,
                                  int *port_out) {
    char errstr[512] = "";
    for (int attempt = 0; attempt < 5; attempt++) {
        char port[16];
        int p = free_port();
        snprintf(port, sizeof(port), "%d", p);
        const char *args[] = {"--tls-port", port,
                              "--tls-cert-file", cert(fx, 0, "server.pem"),
                              "--tls-key-file", cert(fx, 1, "server.key"),
                              "--tls-ca-cert-file", cert(fx, 2, "ca.pem"),
                              "--tls-auth-clients", auth_clients, NULL};
        rs_test_redis_t *r = rs_test_redis_start(args, errstr, sizeof(errstr));
        if (r) {
            *port_out = p;
            return r;
        }
    }
    fail_msg("redis-server with TLS did not start: %s", errstr);
    return NULL;
}

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof(*fx));
    *state = fx;
    snprintf(fx->certs, sizeof(fx->certs), "/tmp/rs-tls-XXXXXX");
    if (!mkdtemp(fx->certs)) {
        fx->certs[0] = '\0';
        return -1;
    }
    const char *src = getenv("RS_SOURCE_DIR");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/tests/support/tls_certs.sh %s",
             src ? src : ".", fx->certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "tls_certs.sh failed (openssl installed? "
                        "RS_SOURCE_DIR set? ctest sets it)\n");
        return -1;
    }
    fx->r = start_tls(fx, "no", &fx->port);
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    if (!fx) return 0;
    rs_test_redis_destroy(fx->r);
    if (fx->certs[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->certs);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", fx->certs);
    }
    free(fx);
    return 0;
}

static void conf_tls(fx_t *fx, rs_redis_conf_t *c, const char *host,
                     int port) {
    rs_redis_conf_init(c);
    snprintf(c->url, sizeof(c->url), "rediss://%s:%d", host, port);
    rs_strlcpy(c->tls_ca_file, cert(fx, 3, "ca.pem"), sizeof(c->tls_ca_file));
}

static void make_score(int i, rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tls-%d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "e-%d", i % 13);
    sc->score = (i % 100) / 100.0;
    snprintf(sc->model_version, sizeof(sc->model_version), "t-1");
    sc->event_time_ms = 1700000000000LL + i;
    sc->scored_at_ms = sc->event_time_ms + 3;
}

/* Pump threads still running after `ms` of waiting for them to end. */
static int pumps_after(int ms) {
    for (int i = 0; i < ms / 10 && rs_redis_tls_pumps() > 0; i++)
        usleep(10000);
    return rs_redis_tls_pumps();
}

static void test_roundtrip(void **state) {
    fx_t *fx = *state;
    rs_redis_conf_t c;
    char errstr[512], json[4096];
    conf_tls(fx, &c, "localhost", fx->port);
    assert_int_equal(rs_redis_conf_check(&c, errstr, sizeof(errstr)), RS_OK);
    rs_sink_redis_t *s = rs_sink_redis_new(&c, errstr, sizeof(errstr));
    if (!s) fail_msg("%s", errstr);
    static rs_score_t sc[600];
    for (int i = 0; i < 600; i++) make_score(i, &sc[i]);
    /* owner connection: synchronous pipelined write, reads */
    assert_int_equal(rs_sink_redis_write(s, sc, 300, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_redis_get_score(s, "tls-299", json, sizeof(json),
                                             errstr, sizeof(errstr)), RS_OK);
    assert_non_null(strstr(json, "\"event_id\":\"tls-299\""));
    /* writer thread: its own TLS connection */
    for (int b = 0; b < 3; b++)
        assert_int_equal(rs_sink_redis_enqueue(s, sc + 300 + 100 * b, 100,
                                               NULL, NULL, (uint64_t)b + 1),
                         RS_OK);
    assert_int_equal(rs_sink_redis_wait(s, 3, 20000), RS_OK);
    for (int i = 300; i < 600; i += 37) {
        char id[32];
        snprintf(id, sizeof(id), "tls-%d", i);
        assert_int_equal(rs_sink_redis_get_score(s, id, json, sizeof(json),
                                                 errstr, sizeof(errstr)),
                         RS_OK);
    }
    assert_true(rs_redis_tls_pumps() >= 2); /* owner + writer */
    rs_sink_redis_destroy(s);

    /* A raw hiredis context on a pump: big values and deep pipelines
     * exercise both buffers and the backpressure. */
    rs_redis_tls_conf_t tc = {1, cert(fx, 3, "ca.pem"), "", "", "", ""};
    rs_redis_tls_t *tls = rs_redis_tls_new(&tc, errstr, sizeof(errstr));
    assert_non_null(tls);
    int fd;
    assert_int_equal(rs_redis_tls_connect(tls, "127.0.0.1", fx->port, 5000,
                                          &fd, errstr, sizeof(errstr)),
                     RS_OK);
    rs_redis_tls_destroy(tls); /* the live session keeps the context */
    redisContext *ctx = redisConnectFd(fd);
    assert_non_null(ctx);
    struct timeval tv = {10, 0};
    redisSetTimeout(ctx, tv);
    size_t big = 4u << 20;
    char *val = malloc(big);
    for (size_t i = 0; i < big; i++) val[i] = (char)('a' + (i * 7919) % 26);
    redisReply *rep = redisCommand(ctx, "SET big %b", val, big);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    rep = redisCommand(ctx, "GET big");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_int_equal(rep->len, big);
    assert_memory_equal(rep->str, val, big);
    freeReplyObject(rep);
    free(val);
    for (int i = 0; i < 5000; i++) redisAppendCommand(ctx, "INCR n");
    for (int i = 0; i < 5000; i++) {
        void *r2 = NULL;
        assert_int_equal(redisGetReply(ctx, &r2), REDIS_OK);
        assert_int_equal(((redisReply *)r2)->integer, i + 1);
        freeReplyObject(r2);
    }
    redisFree(ctx);
    assert_int_equal(pumps_after(5000), 0);
}

static void test_verify(void **state) {
    fx_t *fx = *state;
    rs_redis_conf_t c;
    char errstr[512];
    const struct { const char *host, *ca, *name; int verify;
                   const char *want; } cases[] = {
        {"localhost", "other-ca.pem", "", 1, "certificate verify failed"},
        {"localhost", "", "", 1, "certificate verify failed"}, /* system */
        {"localhost", "ca.pem", "redis.example", 1, "hostname mismatch"},
        {"127.0.0.1", "ca.pem", "", 1, NULL},  /* IP SAN */
        {"localhost", "ca.pem", "redis.test", 1, NULL},
        {"localhost", "other-ca.pem", "", 0, NULL}, /* not verified */
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        conf_tls(fx, &c, cases[i].host, fx->port);
        if (cases[i].ca[0])
            rs_strlcpy(c.tls_ca_file, cert(fx, 4, cases[i].ca),
                       sizeof(c.tls_ca_file));
        else
            c.tls_ca_file[0] = '\0';
        rs_strlcpy(c.tls_server_name, cases[i].name,
                   sizeof(c.tls_server_name));
        c.tls_verify = cases[i].verify;
        errstr[0] = '\0';
        rs_sink_redis_t *s = rs_sink_redis_new(&c, errstr, sizeof(errstr));
        if (cases[i].want) {
            if (s) fail_msg("case %zu connected", i);
            if (!strstr(errstr, cases[i].want))
                fail_msg("case %zu: '%s' lacks '%s'", i, errstr,
                         cases[i].want);
        } else {
            if (!s) fail_msg("case %zu: %s", i, errstr);
            assert_int_equal(rs_sink_redis_ping(s, errstr, sizeof(errstr)),
                             RS_OK);
            rs_sink_redis_destroy(s);
        }
    }
    /* Configuration errors, found before any connection. */
    conf_tls(fx, &c, "localhost", fx->port);
    rs_strlcpy(c.tls_ca_file, "/nonexistent/ca.pem", sizeof(c.tls_ca_file));
    assert_int_equal(rs_redis_conf_check(&c, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "redis.tls_ca_file '/nonexistent/ca.pem'"));
    rs_redis_conf_init(&c);
    rs_strlcpy(c.url, "redis://localhost:1", sizeof(c.url));
    rs_strlcpy(c.tls_server_name, "x", sizeof(c.tls_server_name));
    assert_int_equal(rs_redis_conf_check(&c, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "not rediss://"));
    assert_int_equal(pumps_after(5000), 0);
}

static void test_restart(void **state) {
    fx_t *fx = *state;
    rs_redis_conf_t c;
    char errstr[512], json[4096];
    conf_tls(fx, &c, "localhost", fx->port);
    c.timeout_ms = 1000;
    rs_sink_redis_t *s = rs_sink_redis_new(&c, errstr, sizeof(errstr));
    if (!s) fail_msg("%s", errstr);
    rs_score_t sc[50];
    for (int i = 0; i < 50; i++) make_score(1000 + i, &sc[i]);
    assert_int_equal(rs_sink_redis_enqueue(s, sc, 25, NULL, NULL, 1), RS_OK);
    assert_int_equal(rs_sink_redis_wait(s, 1, 20000), RS_OK);

    assert_int_equal(rs_test_redis_stop(fx->r), 0);
    rs_err_t err = rs_sink_redis_get_score(s, "tls-1000", json, sizeof(json),
                                           errstr, sizeof(errstr));
    assert_int_equal(err, RS_ERR_IO);
    /* queued during the outage: kept, written after */
    assert_int_equal(rs_sink_redis_enqueue(s, sc + 25, 25, NULL, NULL, 2),
                     RS_OK);
    usleep(300000);
    assert_int_not_equal(rs_sink_redis_done(s), 2);
    if (rs_test_redis_restart(fx->r, errstr, sizeof(errstr)) != 0)
        fail_msg("restart: %s", errstr);
    assert_int_equal(rs_sink_redis_wait(s, 2, 30000), RS_OK);
    assert_int_equal(rs_sink_redis_get_score(s, "tls-1049", json,
                                             sizeof(json), errstr,
                                             sizeof(errstr)), RS_OK);
    /* (the first 25 went with the server: no persistence) */
    rs_sink_redis_destroy(s);
    assert_int_equal(pumps_after(5000), 0);
}

static void test_client_cert(void **state) {
    fx_t *fx = *state;
    int port;
    rs_test_redis_t *r = start_tls(fx, "yes", &port);
    rs_redis_conf_t c;
    char errstr[512], json[256];
    conf_tls(fx, &c, "localhost", port);
    c.timeout_ms = 2000;
    /* Without a client certificate: refused at the handshake or (TLS 1.3)
     * at the first command. */
    rs_sink_redis_t *s = rs_sink_redis_new(&c, errstr, sizeof(errstr));
    if (s) {
        assert_int_equal(rs_sink_redis_get_score(s, "x", json, sizeof(json),
                                                 errstr, sizeof(errstr)),
                         RS_ERR_IO);
        rs_sink_redis_destroy(s);
    }
    rs_strlcpy(c.tls_cert_file, cert(fx, 5, "client.pem"),
               sizeof(c.tls_cert_file));
    rs_strlcpy(c.tls_key_file, cert(fx, 6, "client.key"),
               sizeof(c.tls_key_file));
    s = rs_sink_redis_new(&c, errstr, sizeof(errstr));
    if (!s) fail_msg("%s", errstr);
    assert_int_equal(rs_sink_redis_get_score(s, "x", json, sizeof(json),
                                             errstr, sizeof(errstr)),
                     RS_ERR_NOTFOUND);
    rs_sink_redis_destroy(s);
    /* A key that does not match the certificate. */
    rs_strlcpy(c.tls_key_file, cert(fx, 6, "server.key"),
               sizeof(c.tls_key_file));
    assert_int_equal(rs_redis_conf_check(&c, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "redis.tls_key_file"));
    rs_test_redis_destroy(r);
    assert_int_equal(pumps_after(5000), 0);
}

static void test_url(void **state) {
    (void)state;
    rs_redis_url_t u;
    char errstr[256];
    assert_int_equal(rs_redis_url_parse("rediss://:pw@cache.internal:6380/2",
                                        &u, errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.password, "pw");
    assert_int_equal(rs_redis_url_parse("redis://h", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_int_equal(u.tls, 0);
    /* Sentinel / Cluster schemes are named as unsupported. */
    assert_int_equal(rs_redis_url_parse("redis-sentinel://h:26379", &u,
                                        errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "Sentinel and Cluster"));
    assert_int_equal(rs_redis_url_parse("rediss://", &u, errstr,
                                        sizeof(errstr)), RS_ERR_CONFIG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_client_cert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
