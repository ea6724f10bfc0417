/* rs_test_redis.h -- a private redis-server for one test.
 *
 * rs_test_redis_start() makes a temp dir (mkdtemp), starts
 *   redis-server --port 0 --unixsocket DIR/redis.sock --save '' \
 *                --appendonly no --daemonize no --dir DIR --logfile ...
 * as a child process and waits (up to 10 s) until PING answers.  The
 * server can be stopped and started again on the SAME socket path (Redis
 * outage tests); rs_test_redis_destroy() stops it and removes the dir.
 *
 * The redis-server binary is $RS_REDIS_SERVER if set, else found on PATH.
 * Threads: one test thread.
 */
#ifndef RS_TEST_REDIS_H
#define RS_TEST_REDIS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_test_redis_s rs_test_redis_t;

/* Start a server.  `extra_args` (may be NULL) is a NULL-terminated list of
 * extra redis-server arguments, e.g. {"--requirepass", "s3cret", NULL};
 * they are reused on restart.  Returns NULL with errstr (including the
 * tail of the server log) on failure. */
rs_test_redis_t *rs_test_redis_start(const char *const *extra_args,
                                     char *errstr, size_t errstr_size);

/* "unix:///tmp/rs-redis-XXXXXX/redis.sock" -- owned by t. */
const char *rs_test_redis_url(const rs_test_redis_t *t);
/* The socket path -- owned by t. */
const char *rs_test_redis_socket(const rs_test_redis_t *t);
/* The temp dir -- owned by t. */
const char *rs_test_redis_dir(const rs_test_redis_t *t);
/* pid of the running server, or -1 when stopped. */
pid_t rs_test_redis_pid(const rs_test_redis_t *t);

/* Stop the server (SIGTERM, wait; SIGKILL after 10 s), keep the dir.
 * Returns 0 (also when already stopped). */
int rs_test_redis_stop(rs_test_redis_t *t);

/* Start it again on the same socket path (after rs_test_redis_stop).
 * Returns 0, or -1 with errstr. */
int rs_test_redis_restart(rs_test_redis_t *t, char *errstr,
                          size_t errstr_size);

/* Stop the server and remove the temp dir.  NULL is a no-op. */
void rs_test_redis_destroy(rs_test_redis_t *t);

/* A hiredis connection to t's unix socket for checks (the caller
 * redisFree's it); fails the current cmocka test if it cannot connect. */
struct redisContext *rs_test_redis_connect(rs_test_redis_t *t);

/* GET key on c, again every 10 ms until it is a string (the service's
 * Redis writer is asynchronous; 10 s, else the test fails).  The caller
 * freeReplyObject's it. */
struct redisReply *rs_test_redis_get_wait(struct redisContext *c,
                                          const char *key);

/* The integer reply of command fmt (with one string argument, arg) on c;
 * fails the current cmocka test on any other reply. */
long long rs_test_redis_int(struct redisContext *c, const char *fmt,
                            const char *arg);

#ifdef __cplusplus
}
#endif
#endif /* RS_TEST_REDIS_H */
