/* cdp.c -- drive headless Chromium through the DevTools protocol over a
 * pipe (--remote-debugging-pipe: Chromium reads commands on fd 3 and writes
 * answers and events on fd 4, NUL-separated JSON), for the analysts' pages
 * test.  No websocket, no Python, no Node: a C file and jansson.
 *
 *   rs_cdp CHROMIUM PROFILE_DIR SCRIPT
 *
 * SCRIPT holds one command per line (blank lines and # comments skipped):
 *   size W H           viewport W x H CSS pixels (device scale 1)
 *   goto URL           navigate and wait for the new document's load
 *                      event (30 s)
 *   eval JS            evaluate (promises awaited); print "eval: <JSON>"
 *   expect JS          evaluate; fail unless the result is true
 *   wait S JS          evaluate every 100 ms until true (an evaluation a
 *                      navigation cut short counts as not yet), fail after S s
 *   shot FILE          screenshot of the viewport as PNG
 *   dom FILE           document.documentElement.outerHTML into FILE
 *   echo TEXT          print TEXT
 * Exit 0 when every command succeeded, 1 with "FAIL line N: ..." on
 * stderr otherwise, 2 for usage.  Chromium is always closed (Browser.close,
 * then SIGKILL after 5 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int to_chrome = -1, from_chrome = -1;
static pid_t chrome_pid = -1;
static char *rbuf;
static size_t rlen, rcap;
static int next_id = 1;
static char session[128];
static int load_fired;             /* the main frame's current document */
static char cur_loader[128];       /* loaderId of the main frame's document */
static int lineno;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_chrome(void);

static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL line %d: ", lineno);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    close_chrome();
    exit(1);
}

static void send_msg(const char *s) {
    size_t n = strlen(s) + 1; /* with the NUL separator */
    for (size_t off = 0; off < n;) {
        ssize_t w = write(to_chrome, s + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write to chromium: %s", strerror(errno));
        off += (size_t)w;
    }
}

/* The next message from Chromium (caller frees), or NULL at the deadline. */
static json_t *read_msg(int64_t deadline) {
    for (;;) {
        char *nul = rlen ? memchr(rbuf, '\0', rlen) : NULL;
        if (nul) {
            size_t n = (size_t)(nul - rbuf);
            json_error_t je;
            json_t *m = json_loadb(rbuf, n, 0, &je);
            memmove(rbuf, nul + 1, rlen - n - 1);
            rlen -= n + 1;
            if (!m) die("bad JSON from chromium: %s", je.text);
            return m;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) return NULL;
        struct pollfd p = {from_chrome, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return NULL;
        if (rlen + 65536 > rcap) {
            rcap = (rcap ? rcap * 2 : 1 << 20) + 65536;
            rbuf = realloc(rbuf, rcap);
            if (!rbuf) die("out of memory");
        }
        ssize_t got = read(from_chrome, rbuf + rlen, rcap - rlen);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) die("chromium closed the pipe");
        rlen += (size_t)got;
    }
}

/* Track the main frame: a new document (frameNavigated, with its
 * loaderId) resets load_fired; its load event sets it.  Events of the
 * document before are in order before, so a stale load event never
 * counts for a new navigation. */
static void note_event(json_t *m) {
    const char *method = json_string_value(json_object_get(m, "method"));
    const char *sid = json_string_value(json_object_get(m, "sessionId"));
    if (!method || !sid || strcmp(sid, session)) return;
    if (!strcmp(method, "Page.frameNavigated")) {
        json_t *fr = json_object_get(json_object_get(m, "params"), "frame");
        const char *lid = json_string_value(json_object_get(fr, "loaderId"));
        if (fr && !json_object_get(fr, "parentId") && lid) {
            snprintf(cur_loader, sizeof(cur_loader), "%s", lid);
            load_fired = 0;
        }
    } else if (!strcmp(method, "Page.loadEventFired")) {
        load_fired = 1;
    }
}

/* Send `method` with `params` (stolen) on the page session (or the browser
 * when to_browser) and return its result (caller decrefs).  An error
 * answer is fatal, unless `soft`: then NULL. */
static json_t *call_soft(const char *method, json_t *params, int to_browser,
                         int soft) {
    int id = next_id++;
    json_t *m = json_object();
    json_object_set_new(m, "id", json_integer(id));
    json_object_set_new(m, "method", json_string(method));
    json_object_set_new(m, "params", params ? params : json_object());
    if (!to_browser && session[0])
        json_object_set_new(m, "sessionId", json_string(session));
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    send_msg(s);
    free(s);
    int64_t deadline = now_ms() + 30000;
    for (;;) {
        json_t *r = read_msg(deadline);
        if (!r) die("%s: no answer within 30 s", method);
        json_t *rid = json_object_get(r, "id");
        if (json_is_integer(rid) && json_integer_value(rid) == id) {
            json_t *err = json_object_get(r, "error");
            if (err && soft) {
                json_decref(r);
                return NULL;
            }
            if (err) {
                char *e = json_dumps(err, JSON_COMPACT);
                die("%s: %s", method, e);
            }
            json_t *res = json_incref(json_object_get(r, "result"));
            json_decref(r);
            return res;
        }
        note_event(r);
        json_decref(r);
    }
}

static json_t *call(const char *method, json_t *params, int to_browser) {
    return call_soft(method, params, to_browser, 0);
}

/* Evaluate `js`; the value (caller decrefs).  With `soft` (a `wait`
 * polling across a navigation), an evaluation the navigation cut short
 * ("Inspected target navigated or closed", "Execution context was
 * destroyed") gives NULL: not true yet. */
static json_t *evaluate_soft(const char *js, int soft) {
    json_t *p = json_pack("{s:s,s:b,s:b}", "expression", js, "awaitPromise", 1,
                          "returnByValue", 1);
    json_t *res = call_soft("Runtime.evaluate", p, 0, soft);
    if (!res) return NULL;
    json_t *exc = json_object_get(res, "exceptionDetails");
    if (exc && soft) {
        char *e = json_dumps(exc, JSON_COMPACT);
        int cut = e && strstr(e, "context was destroyed") != NULL;
        free(e);
        if (cut) {
            json_decref(res);
            return NULL;
        }
    }
    if (exc) {
        char *e = json_dumps(exc, JSON_COMPACT);
        die("exception in %s: %s", js, e);
    }
    json_t *v = json_object_get(json_object_get(res, "result"), "value");
    v = v ? json_incref(v) : json_null();
    json_decref(res);
    return v;
}

static json_t *evaluate(const char *js) { return evaluate_soft(js, 0); }

static int b64v(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("cannot write %s", path);
}

static void cmd_shot(const char *path) {
    json_t *p = json_pack("{s:s}", "format", "png");
    json_t *res = call("Page.captureScreenshot", p, 0);
    const char *d = json_string_value(json_object_get(res, "data"));
    if (!d) die("no screenshot data");
    size_t n = strlen(d), o = 0;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)d[i]);
        if (v < 0) continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    write_file(path, out, o);
    free(out);
    json_decref(res);
}

/* Navigate and wait for the load event of THE NEW document (its loaderId
 * from the answer), not of the one before. */
static void cmd_goto(const char *url) {
    char want[128];
    json_t *res = call("Page.navigate", json_pack("{s:s}", "url", url), 0);
    if (json_object_get(res, "errorText"))
        die("navigate %s: %s", url,
            json_string_value(json_object_get(res, "errorText")));
    snprintf(want, sizeof(want), "%s",
             json_string_value(json_object_get(res, "loaderId"))
                 ? json_string_value(json_object_get(res, "loaderId")) : "");
    json_decref(res);
    int64_t deadline = now_ms() + 30000;
    while (!(load_fired && (!want[0] || !strcmp(cur_loader, want)))) {
        json_t *m = read_msg(deadline);
        if (!m) die("no load event for %s within 30 s", url);
        note_event(m);
        json_decref(m);
    }
}

static void close_chrome(void) {
    if (chrome_pid <= 0) return;
    if (to_chrome >= 0) {
        /* best effort: ask politely, then make sure */
        char msg[64];
        snprintf(msg, sizeof(msg), "{\"id\":%d,\"method\":\"Browser.close\"}",
                 next_id++);
        ssize_t w = write(to_chrome, msg, strlen(msg) + 1);
        (void)w;
    }
    for (int i = 0; i < 50; i++) {
        if (waitpid(chrome_pid, NULL, WNOHANG) == chrome_pid) {
            chrome_pid = -1;
            return;
        }
        usleep(100 * 1000);
    }
    kill(chrome_pid, SIGKILL);
    waitpid(chrome_pid, NULL, 0);
    chrome_pid = -1;
}

static void start_chrome(const char *chrome, const char *profile) {
    int in[2], out[2];
    if (pipe(in) || pipe(out)) die("pipe: %s", strerror(errno));
    char pd[1100];
    snprintf(pd, sizeof(pd), "--user-data-dir=%s", profile);
    chrome_pid = fork();
    if (chrome_pid < 0) die("fork: %s", strerror(errno));
    if (chrome_pid == 0) {
        /* fd 3: Chromium reads commands; fd 4: it writes */
        int r = dup(in[0]), w = dup(out[1]);
        if (dup2(r, 3) < 0 || dup2(w, 4) < 0) _exit(127);
        for (int fd = 5; fd < 1024; fd++) close(fd);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 0);
        /* Chromium's own chatter: to RS_CDP_CHROME_LOG, else nowhere */
        const char *log = getenv("RS_CDP_CHROME_LOG");
        int lfd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)
                      : devnull;
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        execl(chrome, chrome, "--headless", "--no-sandbox", "--disable-gpu",
              "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
              "--disable-extensions", "--mute-audio",
              "--remote-debugging-pipe", pd, "about:blank", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_chrome = in[1];
    from_chrome = out[0];
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: rs_cdp CHROMIUM PROFILE_DIR SCRIPT\n");
        return 2;
    }
    FILE *sf = fopen(argv[3], "r");
    if (!sf) {
        fprintf(stderr, "rs_cdp: cannot read %s\n", argv[3]);
        return 2;
    }
    start_chrome(argv[1], argv[2]);
    /* a page target with its own session */
    json_t *res = call("Target.createTarget",
                       json_pack("{s:s}", "url", "about:blank"), 1);
    const char *tid = json_string_value(json_object_get(res, "targetId"));
    if (!tid) die("no target");
    json_t *att = call("Target.attachToTarget",
                       json_pack("{s:s,s:b}", "targetId", tid, "flatten", 1),
                       1);
    snprintf(session, sizeof(session), "%s",
             json_string_value(json_object_get(att, "sessionId")));
    json_decref(att);
    json_decref(res);
    json_decref(call("Page.enable", NULL, 0));
    json_decref(call("Runtime.enable", NULL, 0));

    char line[65536];
    while (fgets(line, sizeof(line), sf)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        char *p = line;
        while (*p == ' ') p++;
        if (!*p || *p == '#') continue;
        char *arg = strchr(p, ' ');
        if (arg) *arg++ = '\0';
        else arg = p + strlen(p);
        if (!strcmp(p, "size")) {
            int w = 0, h = 0;
            if (sscanf(arg, "%d %d", &w, &h) != 2) die("size W H");
            json_decref(call("Emulation.setDeviceMetricsOverride",
                             json_pack("{s:i,s:i,s:i,s:b}", "width", w,
                                       "height", h, "deviceScaleFactor", 1,
                                       "mobile", 0),
                             0));
        } else if (!strcmp(p, "goto")) {
            cmd_goto(arg);
        } else if (!strcmp(p, "eval")) {
            json_t *v = evaluate(arg);
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("eval: %s\n", s);
            fflush(stdout);
            free(s);
            json_decref(v);
        } else if (!strcmp(p, "expect")) {
            json_t *v = evaluate(arg);
            if (!json_is_true(v)) {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                die("expected true: %s (got %s)", arg, s);
            }
            json_decref(v);
        } else if (!strcmp(p, "wait")) {
            char *js = NULL;
            double secs = strtod(arg, &js);
            if (js == arg || secs <= 0) die("wait SECONDS JS");
            int64_t deadline = now_ms() + (int64_t)(secs * 1000);
            for (;;) {
                json_t *v = evaluate_soft(js, 1); /* NULL: navigating */
                int ok = v && json_is_true(v);
                if (v) json_decref(v);
                if (ok) break;
                if (now_ms() > deadline)
                    die("not true within %.0f s:%s", secs, js);
                /* serve events meanwhile */
                json_t *m = read_msg(now_ms() + 100);
                if (m) {
                    note_event(m);
                    json_decref(m);
                }
            }
        } else if (!strcmp(p, "shot")) {
            cmd_shot(arg);
        } else if (!strcmp(p, "dom")) {
            json_t *v = evaluate("document.documentElement.outerHTML");
            const char *s = json_string_value(v);
            if (!s) die("no DOM");
            write_file(arg, s, strlen(s));
            json_decref(v);
        } else if (!strcmp(p, "echo")) {
            printf("%s\n", arg);
            fflush(stdout);
        } else {
            die("unknown command '%s'", p);
        }
    }
    fclose(sf);
    close_chrome();
    return 0;
}
