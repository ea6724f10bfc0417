/* redis_tls.h -- rediss:// (Redis over TLS) for hiredis 0.14, which has no
 * TLS of its own (Debian 12 ships hiredis 0.14.1).
 *
 * Design: the connecting thread opens the TCP connection and runs the TLS
 * handshake with OpenSSL (server certificate verified against
 * redis.tls_ca_file / tls_ca_dir or the system store, host name checked,
 * optional client certificate), then creates a socketpair(AF_UNIX) and
 * hands one end to hiredis (redisConnectFd).  A small pump thread per
 * connection moves bytes between the other end and the TLS session.
 * hiredis sees a plain stream socket: its blocking reads and writes, its
 * timeouts (SO_RCVTIMEO/SO_SNDTIMEO on its end) and its error paths are
 * unchanged, so the sink's reconnect logic works as for redis://.
 *
 * Lifetime: the pump owns the TLS session and both of its descriptors.
 * When hiredis closes its end (redisFree), the pump sends close_notify,
 * frees the session and exits.  When the server closes (or the network
 * fails), the pump closes the pair, which hiredis reports as a lost
 * connection (the sink reconnects).  The pump thread is detached; the
 * shared context (rs_redis_tls_t) may be destroyed while pumps run (each
 * session holds a reference to the OpenSSL context).
 *
 * Alternatives considered: hiredis >= 1.0 has TLS (not in Debian 12);
 * kernel TLS (setsockopt TCP_ULP "tls" after the OpenSSL handshake) needs
 * the tls module and cannot pass TLS 1.3 post-handshake messages (session
 * tickets, key updates) to hiredis's plain read(); a stunnel sidecar works
 * but is one more process to run.  The pump costs one copy per byte and a
 * thread per connection (the service holds two: scoring thread, writer).
 *
 * Threads: rs_redis_tls_new/destroy on one thread; rs_redis_tls_connect
 * from any thread (the sink's owner and writer connect concurrently).
 */
#ifndef RS_REDIS_TLS_H
#define RS_REDIS_TLS_H

#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_redis_tls_conf_s {
    int verify;               /* 1: verify the server certificate          */
    const char *ca_file;      /* PEM bundle; "" = see ca_dir / system store */
    const char *ca_dir;       /* hashed CA directory; ""                    */
    const char *cert_file;    /* client certificate (PEM); "" = none        */
    const char *key_file;     /* its private key (PEM); "" = cert_file      */
    const char *server_name;  /* name to verify and send as SNI; "" = host  */
} rs_redis_tls_conf_t;

typedef struct rs_redis_tls_s rs_redis_tls_t;

/* Build the TLS client context: load the CA locations (the system store
 * when neither ca_file nor ca_dir is set) and the client certificate.
 * Strings are copied.  NULL with errstr naming the file and OpenSSL's
 * reason (RS_ERR_CONFIG material: exit 2).  @locality any */
rs_redis_tls_t *rs_redis_tls_new(const rs_redis_tls_conf_t *conf,
                                 char *errstr, size_t errstr_size);
void rs_redis_tls_destroy(rs_redis_tls_t *tls);

/* Connect to host:port, run the handshake (within timeout_ms overall),
 * start the pump and return hiredis's end of the pair in *fd_out (the
 * caller passes it to redisConnectFd, which owns it from then on).
 * RS_ERR_IO with errstr ("connect: ...", "TLS handshake: certificate
 * verify failed: ...").  @locality any thread */
rs_err_t rs_redis_tls_connect(rs_redis_tls_t *tls, const char *host,
                              int port, int64_t timeout_ms, int *fd_out,
                              char *errstr, size_t errstr_size);

/* Pump threads running now (tests: connections are torn down).  @any */
int rs_redis_tls_pumps(void);

#ifdef __cplusplus
}
#endif
#endif /* RS_REDIS_TLS_H */
