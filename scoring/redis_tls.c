/* redis_tls.c -- TLS connections for the Redis sink (see redis_tls.h).
 *
 * Pump loop (one thread per connection; `plain` is the pump's end of the
 * socketpair, `tcp` the TLS socket; both non-blocking):
 *
 *   plain --read--> up[]   --SSL_write--> tcp        (commands)
 *   plain <-write-- down[] <--SSL_read--- tcp        (replies)
 *
 * Each turn moves what it can in all four steps; when nothing moved it
 * polls for exactly what the blocked steps wait for (OpenSSL says, per
 * call, whether it needs the socket readable or writable).  A full buffer
 * stops reading from its source: backpressure both ways.  End: hiredis
 * closed its end (read 0 / EPIPE) -> close_notify and exit; the server
 * closed or failed -> close `plain` (hiredis sees the connection lost).
 */
#define _GNU_SOURCE
#include "scoring/redis_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define RS_TLS_BUF (64 * 1024)   /* bytes buffered per direction        */

struct rs_redis_tls_s {
    SSL_CTX *ctx;
    int verify;
    char server_name[256];
};

static _Atomic int rs_tls_npumps;

int rs_redis_tls_pumps(void) { return atomic_load(&rs_tls_npumps); }

/* OpenSSL's queued errors as one line (and clear them). */
static void rs_tls_errq(char *buf, size_t size) {
    buf[0] = '\0';
    unsigned long e;
    size_t n = 0;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        if (n + 3 < size)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "; " : "",
                                  one);
    }
    if (!buf[0]) rs_strlcpy(buf, "unknown error", size);
}

rs_redis_tls_t *rs_redis_tls_new(const rs_redis_tls_conf_t *conf,
                                 char *errstr, size_t errstr_size) {
    char q[512];
    rs_redis_tls_t *tls = rs_calloc(1, sizeof(*tls));
    tls->verify = conf->verify;
    rs_strlcpy(tls->server_name, conf->server_name ? conf->server_name : "",
               sizeof(tls->server_name));
    ERR_clear_error();
    tls->ctx = SSL_CTX_new(TLS_client_method());
    if (!tls->ctx) {
        rs_tls_errq(q, sizeof(q));
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "redis TLS: %s", q);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const char *caf = conf->ca_file && *conf->ca_file ? conf->ca_file : NULL;
    const char *cad = conf->ca_dir && *conf->ca_dir ? conf->ca_dir : NULL;
    if (caf || cad) {
        if (SSL_CTX_load_verify_locations(tls->ctx, caf, cad) != 1) {
            rs_tls_errq(q, sizeof(q));
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "redis.%s '%s': cannot load CA certificates: %s",
                    caf ? "tls_ca_file" : "tls_ca_dir", caf ? caf : cad, q);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
        rs_tls_errq(q, sizeof(q));
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "redis TLS: cannot load the system CA store: %s", q);
        goto fail;
    }
    SSL_CTX_set_verify(tls->ctx,
                       conf->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    const char *cert = conf->cert_file && *conf->cert_file ? conf->cert_file
                                                           : NULL;
    const char *key = conf->key_file && *conf->key_file ? conf->key_file
                                                        : cert;
    if (!cert && conf->key_file && *conf->key_file) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "redis.tls_key_file is set without redis.tls_cert_file");
        goto fail;
    }
    if (cert) {
        if (SSL_CTX_use_certificate_chain_file(tls->ctx, cert) != 1) {
            rs_tls_errq(q, sizeof(q));
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "redis.tls_cert_file '%s': %s", cert, q);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(tls->ctx, key, SSL_FILETYPE_PEM) !=
                1 ||
            SSL_CTX_check_private_key(tls->ctx) != 1) {
            rs_tls_errq(q, sizeof(q));
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "redis.tls_key_file '%s': %s", key, q);
            goto fail;
        }
    }
    return tls;
fail:
    rs_redis_tls_destroy(tls);
    return NULL;
}

void rs_redis_tls_destroy(rs_redis_tls_t *tls) {
    if (!tls) return;
    SSL_CTX_free(tls->ctx); /* live sessions keep their own reference */
    rs_free(tls);
}

/* ---------------------------------------------------------------- pump */

typedef struct rs_tls_pump_s {
    SSL *ssl;
    int tcp, plain;
    unsigned char up[RS_TLS_BUF], down[RS_TLS_BUF];
    size_t up_len, down_len;
} rs_tls_pump_t;

static void rs_tls_pump_free(rs_tls_pump_t *p) {
    if (p->ssl) SSL_free(p->ssl);
    if (p->tcp >= 0) close(p->tcp);
    if (p->plain >= 0) close(p->plain);
    free(p);
}

static void *rs_tls_pump_main(void *arg) {
    rs_tls_pump_t *p = arg;
    int plain_eof = 0, tls_eof = 0, fatal = 0;
    for (;;) {
        int moved = 0, tcp_in = 0, tcp_out = 0, plain_out = 0;
        /* 1. commands from hiredis */
        if (!plain_eof && p->up_len < RS_TLS_BUF) {
            ssize_t n = read(p->plain, p->up + p->up_len,
                             RS_TLS_BUF - p->up_len);
            if (n > 0) { p->up_len += (size_t)n; moved = 1; }
            else if (n == 0) plain_eof = 1;
            else if (errno != EAGAIN && errno != EINTR) plain_eof = 1;
        }
        /* 2. ... into the TLS session */
        if (p->up_len > 0) {
            ERR_clear_error();
            int r = SSL_write(p->ssl, p->up, (int)p->up_len);
            if (r > 0) {
                memmove(p->up, p->up + r, p->up_len - (size_t)r);
                p->up_len -= (size_t)r;
                moved = 1;
            } else {
                int e = SSL_get_error(p->ssl, r);
                if (e == SSL_ERROR_WANT_READ) tcp_in = 1;
                else if (e == SSL_ERROR_WANT_WRITE) tcp_out = 1;
                else { fatal = 1; break; }
            }
        }
        /* 3. replies from the server */
        if (!tls_eof && p->down_len < RS_TLS_BUF) {
            ERR_clear_error();
            int r = SSL_read(p->ssl, p->down + p->down_len,
                             (int)(RS_TLS_BUF - p->down_len));
            if (r > 0) { p->down_len += (size_t)r; moved = 1; }
            else {
                int e = SSL_get_error(p->ssl, r);
                if (e == SSL_ERROR_WANT_READ) tcp_in = 1;
                else if (e == SSL_ERROR_WANT_WRITE) tcp_out = 1;
                else tls_eof = 1; /* close_notify, reset, protocol error */
            }
        }
        /* 4. ... to hiredis */
        if (p->down_len > 0) {
            ssize_t n = send(p->plain, p->down, p->down_len, MSG_NOSIGNAL);
            if (n > 0) {
                memmove(p->down, p->down + n, p->down_len - (size_t)n);
                p->down_len -= (size_t)n;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                plain_eof = 1; /* hiredis is gone */
                p->down_len = 0;
            } else {
                plain_out = 1;
            }
        }
        if (plain_eof && p->up_len == 0) break;  /* hiredis closed */
        if (tls_eof && p->down_len == 0) break;  /* server closed  */
        if (moved) continue;
        struct pollfd fds[2];
        fds[0].fd = p->plain;
        fds[0].events = (short)((!plain_eof && p->up_len < RS_TLS_BUF
                                     ? POLLIN : 0) |
                                (plain_out ? POLLOUT : 0));
        fds[1].fd = p->tcp;
        fds[1].events = (short)((tcp_in ? POLLIN : 0) |
                                (tcp_out ? POLLOUT : 0));
        fds[0].revents = fds[1].revents = 0;
        /* An fd with nothing to wait for is left out: its HUP/ERR would
         * wake every poll while we wait for the other side. */
        if (!fds[0].events) fds[0].fd = -1;
        if (!fds[1].events) fds[1].fd = -1;
        int wait_ms = fds[0].fd < 0 && fds[1].fd < 0 ? 100 : -1;
        if (poll(fds, 2, wait_ms) < 0 && errno != EINTR) { fatal = 1; break; }
    }
    if (!fatal && !tls_eof) {
        /* Best effort, non-blocking: one close_notify. */
        ERR_clear_error();
        SSL_shutdown(p->ssl);
    }
    rs_tls_pump_free(p);
    atomic_fetch_sub(&rs_tls_npumps, 1);
    return NULL;
}

/* --------------------------------------------------------------- connect */

/* Non-blocking connect to host:port before `deadline_us` (monotonic);
 * returns the socket (still non-blocking) or -1 with errstr. */
static int rs_tls_tcp_connect(const char *host, int port, int64_t deadline_us,
                              char *errstr, size_t errstr_size) {
    struct addrinfo hints, *res = NULL;
    char ps[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof(ps), "%d", port);
    int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai) {
        rs_errf(errstr, errstr_size, RS_ERR_IO, "resolve %s: %s", host,
                gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ai_protocol);
        if (fd < 0) { err = errno; continue; }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            int64_t left_ms = (deadline_us - rs_clock_mono_us()) / 1000;
            struct pollfd pf = {fd, POLLOUT, 0};
            int r = left_ms > 0 ? poll(&pf, 1, (int)left_ms) : 0;
            socklen_t sl = sizeof(err);
            if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 &&
                err == 0)
                break;
            if (r == 0) err = ETIMEDOUT;
        } else {
            err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        rs_errf(errstr, errstr_size, RS_ERR_IO, "connect %s:%d: %s", host,
                port, strerror(err ? err : ECONNREFUSED));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return fd;
}

static int rs_tls_is_ip(const char *s) {
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

rs_err_t rs_redis_tls_connect(rs_redis_tls_t *tls, const char *host,
                              int port, int64_t timeout_ms, int *fd_out,
                              char *errstr, size_t errstr_size) {
    char q[512];
    int64_t deadline = rs_clock_mono_us() + timeout_ms * 1000;
    int sv[2] = {-1, -1};
    rs_tls_pump_t *p = NULL;
    *fd_out = -1;
    int tcp = rs_tls_tcp_connect(host, port, deadline, errstr, errstr_size);
    if (tcp < 0) return RS_ERR_IO;

    p = rs_calloc(1, sizeof(*p));
    p->tcp = tcp;
    p->plain = -1;
    ERR_clear_error();
    p->ssl = SSL_new(tls->ctx);
    if (!p->ssl || SSL_set_fd(p->ssl, tcp) != 1) {
        rs_tls_errq(q, sizeof(q));
        rs_errf(errstr, errstr_size, RS_ERR_IO, "TLS: %s", q);
        goto fail;
    }
    const char *name = tls->server_name[0] ? tls->server_name : host;
    if (!rs_tls_is_ip(name)) {
        SSL_set_tlsext_host_name(p->ssl, name); /* SNI */
        if (tls->verify) SSL_set1_host(p->ssl, name);
    } else if (tls->verify) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), name);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(p->ssl);
        if (r == 1) break;
        int e = SSL_get_error(p->ssl, r);
        int64_t left_ms = (deadline - rs_clock_mono_us()) / 1000;
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            left_ms > 0) {
            struct pollfd pf = {tcp, e == SSL_ERROR_WANT_READ ? POLLIN
                                                               : POLLOUT, 0};
            if (poll(&pf, 1, (int)left_ms) >= 0) continue;
        }
        long vr = SSL_get_verify_result(p->ssl);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            rs_strlcpy(q, "timed out", sizeof(q));
        else if (vr != X509_V_OK)
            snprintf(q, sizeof(q), "certificate verify failed: %s (check "
                     "redis.tls_ca_file / tls_ca_dir and "
                     "redis.tls_server_name '%s')",
                     X509_verify_cert_error_string(vr), name);
        else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
            snprintf(q, sizeof(q), "connection closed by the server (%s; a "
                     "client certificate required?)",
                     errno ? strerror(errno) : "EOF");
        else {
            rs_tls_errq(q, sizeof(q));
            if (strstr(q, "wrong version number") ||
                strstr(q, "packet length too long")) {
                size_t n = strlen(q);
                snprintf(q + n, sizeof(q) - n,
                         " (is this a TLS port? redis:// for plain)");
            }
        }
        rs_errf(errstr, errstr_size, RS_ERR_IO, "TLS handshake with %s:%d: %s",
                host, port, q);
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rs_errf(errstr, errstr_size, RS_ERR_IO, "socketpair: %s",
                strerror(errno));
        goto fail;
    }
    p->plain = sv[1];
    fcntl(p->plain, F_SETFL, fcntl(p->plain, F_GETFL) | O_NONBLOCK);

    /* The pump takes no signal (SIGINT/SIGTERM belong to the main thread,
     * SIGPIPE must not kill): block them all while creating it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t th;
    atomic_fetch_add(&rs_tls_npumps, 1);
    int rc = pthread_create(&th, &attr, rs_tls_pump_main, p);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_fetch_sub(&rs_tls_npumps, 1);
        rs_errf(errstr, errstr_size, RS_ERR_IO, "TLS pump thread: %s",
                strerror(rc));
        goto fail;
    }
    *fd_out = sv[0];
    return RS_OK;
fail:
    if (sv[0] >= 0) close(sv[0]);
    if (p) rs_tls_pump_free(p); /* closes tcp and sv[1] */
    else close(tcp);
    return RS_ERR_IO;
}
