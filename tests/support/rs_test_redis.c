/* rs_test_redis.c -- see rs_test_redis.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "tests/support/rs_test_redis.h"

#define RS_TEST_REDIS_MAX_ARGS 32

struct rs_test_redis_s {
    char dir[64];
    char sock[128];
    char url[160];
    char log[128];
    char *extra[RS_TEST_REDIS_MAX_ARGS];
    int nextra;
    pid_t pid;
};

static long long rs_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rs_test_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Last ~300 bytes of the server log, for error messages. */
static void rs_test_log_tail(const rs_test_redis_t *t, char *buf,
                             size_t size) {
    buf[0] = '\0';
    FILE *fp = fopen(t->log, "r");
    if (!fp) return;
    long want = (long)size - 1 > 300 ? 300 : (long)size - 1;
    if (fseek(fp, -want, SEEK_END) != 0) rewind(fp);
    size_t n = fread(buf, 1, size - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = ' ';
}

/* PING over the unix socket: 1 if it answers PONG (or NOAUTH: the server
 * is up, it just wants a password). */
static int rs_test_ping(const rs_test_redis_t *t) {
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(t->sock, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        if (r) {
            ok = (r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG")) ||
                 (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOAUTH", 6));
            freeReplyObject(r);
        }
    }
    if (c) redisFree(c);
    return ok;
}

static int rs_test_spawn(rs_test_redis_t *t, char *errstr, size_t errstr_size) {
    const char *bin = getenv("RS_REDIS_SERVER");
    if (!bin || !*bin) bin = "redis-server";
    const char *argv[24 + RS_TEST_REDIS_MAX_ARGS];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "--port";           argv[argc++] = "0";
    argv[argc++] = "--unixsocket";     argv[argc++] = t->sock;
    argv[argc++] = "--unixsocketperm"; argv[argc++] = "700";
    argv[argc++] = "--save";           argv[argc++] = "";
    argv[argc++] = "--appendonly";     argv[argc++] = "no";
    argv[argc++] = "--daemonize";      argv[argc++] = "no";
    argv[argc++] = "--dir";            argv[argc++] = t->dir;
    argv[argc++] = "--logfile";        argv[argc++] = t->log;
    for (int i = 0; i < t->nextra; i++) argv[argc++] = t->extra[i];
    argv[argc] = NULL;

    unlink(t->sock); /* a stale socket from a killed server */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(errstr, errstr_size, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Child: quiet stdio, own process group (no terminal signals). */
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2) close(fd);
        }
        setpgid(0, 0);
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    t->pid = pid;

    long long deadline = rs_test_now_ms() + 10000;
    while (rs_test_now_ms() < deadline) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            char tail[320];
            rs_test_log_tail(t, tail, sizeof(tail));
            t->pid = -1;
            snprintf(errstr, errstr_size,
                     "redis-server exited (status %d%s) before answering "
                     "PING; log: %s",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     WIFEXITED(status) && WEXITSTATUS(status) == 127
                         ? ", not installed?" : "",
                     tail[0] ? tail : "(empty)");
            return -1;
        }
        if (rs_test_ping(t)) return 0;
        rs_test_sleep_ms(20);
    }
    char tail[320];
    rs_test_log_tail(t, tail, sizeof(tail));
    rs_test_redis_stop(t);
    snprintf(errstr, errstr_size,
             "redis-server did not answer PING within 10 s; log: %s", tail);
    return -1;
}

rs_test_redis_t *rs_test_redis_start(const char *const *extra_args,
                                     char *errstr, size_t errstr_size) {
    rs_test_redis_t *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    t->pid = -1;
    const char *tmp = getenv("TMPDIR");
    /* Keep the socket path short (sun_path is 108 bytes). */
    if (!tmp || strlen(tmp) > 40) tmp = "/tmp";
    snprintf(t->dir, sizeof(t->dir), "%s/rs-redis-XXXXXX", tmp);
    if (!mkdtemp(t->dir)) {
        snprintf(errstr, errstr_size, "mkdtemp %s: %s", t->dir,
                 strerror(errno));
        free(t);
        return NULL;
    }
    snprintf(t->sock, sizeof(t->sock), "%s/redis.sock", t->dir);
    snprintf(t->url, sizeof(t->url), "unix://%s", t->sock);
    snprintf(t->log, sizeof(t->log), "%s/redis.log", t->dir);
    for (int i = 0; extra_args && extra_args[i] &&
                    t->nextra < RS_TEST_REDIS_MAX_ARGS; i++)
        t->extra[t->nextra++] = strdup(extra_args[i]);
    if (rs_test_spawn(t, errstr, errstr_size) != 0) {
        rs_test_redis_destroy(t);
        return NULL;
    }
    return t;
}

const char *rs_test_redis_url(const rs_test_redis_t *t) { return t->url; }
const char *rs_test_redis_socket(const rs_test_redis_t *t) { return t->sock; }
const char *rs_test_redis_dir(const rs_test_redis_t *t) { return t->dir; }
pid_t rs_test_redis_pid(const rs_test_redis_t *t) { return t->pid; }

int rs_test_redis_stop(rs_test_redis_t *t) {
    if (t->pid <= 0) return 0;
    kill(t->pid, SIGTERM);
    long long deadline = rs_test_now_ms() + 10000;
    int status;
    for (;;) {
        pid_t w = waitpid(t->pid, &status, WNOHANG);
        if (w == t->pid || (w < 0 && errno == ECHILD)) break;
        if (rs_test_now_ms() > deadline) {
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &status, 0);
            break;
        }
        rs_test_sleep_ms(10);
    }
    t->pid = -1;
    return 0;
}

int rs_test_redis_restart(rs_test_redis_t *t, char *errstr,
                          size_t errstr_size) {
    rs_test_redis_stop(t);
    return rs_test_spawn(t, errstr, errstr_size);
}

static int rs_test_rm_cb(const char *path, const struct stat *sb, int flag,
                         struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void rs_test_redis_destroy(rs_test_redis_t *t) {
    if (!t) return;
    rs_test_redis_stop(t);
    if (t->dir[0]) nftw(t->dir, rs_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < t->nextra; i++) free(t->extra[i]);
    free(t);
}

redisContext *rs_test_redis_connect(rs_test_redis_t *t) {
    redisContext *c = redisConnectUnix(rs_test_redis_socket(t));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

long long rs_test_redis_int(redisContext *c, const char *fmt,
                            const char *arg) {
    redisReply *rep = redisCommand(c, fmt, arg);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

redisReply *rs_test_redis_get_wait(redisContext *c, const char *key) {
    for (int w = 0; w < 1000; w++) {
        redisReply *r = redisCommand(c, "GET %s", key);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_STRING) return r;
        freeReplyObject(r);
        rs_test_sleep_ms(10);
    }
    fail_msg("GET %s: no string after 10 s", key);
    return NULL;
}
