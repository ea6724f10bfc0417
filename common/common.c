/* common.c -- errors, logging, clocks, hashing, allocation, rng, kv.
 * See common.h for the contract of each function. */
#define _GNU_SOURCE
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <stdlib.h>
#include <malloc.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---------------------------------------------------------------- errors */

static const char *rs_err_names[RS_ERR__CNT] = {
    [RS_OK] = "success",
    [RS_ERR_INVALID] = "invalid input",
    [RS_ERR_CONFIG] = "configuration error",
    [RS_ERR_NOMEM] = "out of memory or pool full",
    [RS_ERR_IO] = "I/O error",
    [RS_ERR_KAFKA] = "Kafka error",
    [RS_ERR_REDIS] = "Redis error",
    [RS_ERR_NOTFOUND] = "not found",
    [RS_ERR_CORRUPT] = "corrupt data",
    [RS_ERR_TOOBIG] = "input too large",
    [RS_ERR_AGAIN] = "try again",
    [RS_ERR_TIMEOUT] = "timed out",
    [RS_ERR_STATE] = "invalid state",
};

const char *rs_err_str(rs_err_t err) {
    if ((int)err < 0 || err >= RS_ERR__CNT || !rs_err_names[err])
        return "unknown error";
    return rs_err_names[err];
}

int rs_err_retriable(rs_err_t err) {
    return err == RS_ERR_AGAIN || err == RS_ERR_TIMEOUT || err == RS_ERR_IO;
}

rs_err_t rs_errf(char *errstr, size_t errstr_size, rs_err_t err,
                 const char *fmt, ...) {
    if (errstr && errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* --------------------------------------------------------------- logging */

static rs_log_level_t rs_log_level = RS_LOG_INFO;
static FILE *rs_log_fp;
static pthread_mutex_t rs_log_lock = PTHREAD_MUTEX_INITIALIZER;

void rs_log_set_level(rs_log_level_t level) { rs_log_level = level; }
rs_log_level_t rs_log_get_level(void) { return rs_log_level; }
void rs_log_set_stream(FILE *fp) { rs_log_fp = fp; }

int rs_log_level_parse(const char *s) {
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(s, names[i])) return i;
    return -1;
}

void rs_logv(rs_log_level_t level, const char *mod, const char *fmt,
             va_list ap) {
    static const char *lvl[] = {"debug", "info", "warn", "error", "off"};
    if (level < rs_log_level || level >= RS_LOG_OFF) return;
    char msg[1024], ts[40];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Escape quotes and newlines so one record is one line. */
    char esc[2048];
    size_t j = 0;
    for (size_t i = 0; msg[i] && j + 2 < sizeof(esc); i++) {
        char c = msg[i];
        if (c == '"' || c == '\\') { esc[j++] = '\\'; esc[j++] = c; }
        else if (c == '\n') { esc[j++] = '\\'; esc[j++] = 'n'; }
        else esc[j++] = c;
    }
    esc[j] = '\0';
    rs_time_fmt(rs_clock_wall_ms(), ts, sizeof(ts));
    FILE *fp = rs_log_fp ? rs_log_fp : stderr;
    pthread_mutex_lock(&rs_log_lock);
    fprintf(fp, "ts=%s level=%s mod=%s msg=\"%s\"\n", ts, lvl[level],
            mod ? mod : "-", esc);
    fflush(fp);
    pthread_mutex_unlock(&rs_log_lock);
}

void rs_log(rs_log_level_t level, const char *mod, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rs_logv(level, mod, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- clocks */

int64_t rs_clock_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
int64_t rs_clock_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
int64_t rs_clock_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
int64_t rs_clock_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rs_duration_parse(const char *s, int64_t *out_ms) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return -1;
    while (*end == ' ') end++;
    double mul;
    if (!*end || !strcmp(end, "ms")) mul = 1;
    else if (!strcmp(end, "s")) mul = 1000;
    else if (!strcmp(end, "m")) mul = 60e3;
    else if (!strcmp(end, "h")) mul = 3600e3;
    else if (!strcmp(end, "d")) mul = 86400e3;
    else if (!strcmp(end, "w")) mul = 7 * 86400e3;
    else return -1;
    double ms = v * mul;
    if (ms > 9.2e18) return -1;
    *out_ms = (int64_t)llround(ms);
    return 0;
}

void rs_duration_fmt(int64_t ms, char *buf, size_t size) {
    static const struct { int64_t mul; const char *u; } units[] = {
        {7 * 86400000LL, "w"}, {86400000LL, "d"}, {3600000LL, "h"},
        {60000LL, "m"}, {1000LL, "s"}};
    if (ms != 0)
        for (size_t i = 0; i < RS_ARRAY_LEN(units); i++)
            if (ms % units[i].mul == 0) {
                snprintf(buf, size, "%lld%s", (long long)(ms / units[i].mul),
                         units[i].u);
                return;
            }
    snprintf(buf, size, "%lldms", (long long)ms);
}

/* Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm). */
static int64_t rs_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int rs_time_parse(const char *s, size_t len, int64_t *out_ms) {
    char buf[64];
    if (!s || len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *p = buf;
    while (*p == ' ' || *p == '"') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '"' || p[n - 1] == '\r'))
        p[--n] = '\0';
    if (!n) return -1;
    if (strchr(p, '-') && n >= 10 && isdigit((unsigned char)p[0])) {
        int Y, M, D, h = 0, mi = 0, sec = 0, ms = 0, consumed = 0;
        if (sscanf(p, "%4d-%2d-%2d%n", &Y, &M, &D, &consumed) != 3) return -1;
        const char *q = p + consumed;
        if (*q == 'T' || *q == ' ') {
            q++;
            int c2 = 0;
            if (sscanf(q, "%2d:%2d:%2d%n", &h, &mi, &sec, &c2) != 3) return -1;
            q += c2;
            if (*q == '.') {
                q++;
                int digits = 0;
                ms = 0;
                while (isdigit((unsigned char)*q)) {
                    if (digits < 3) { ms = ms * 10 + (*q - '0'); digits++; }
                    q++;
                }
                while (digits < 3) { ms *= 10; digits++; }
            }
        }
        if (*q == 'Z') q++;
        if (*q) return -1;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 ||
            mi < 0 || mi > 59 || sec < 0 || sec > 60)
            return -1;
        int64_t days = rs_days_from_civil(Y, (unsigned)M, (unsigned)D);
        *out_ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || *end || !isfinite(v)) return -1;
    /* Outside int64 ms (llround would return an unspecified value). */
    if (fabs(v) >= 9.2e18) return -1;
    /* Heuristic documented in common.h: >= 1e11 is milliseconds. */
    if (fabs(v) >= 1e11) *out_ms = (int64_t)llround(v);
    else *out_ms = (int64_t)llround(v * 1000.0);
    return 0;
}

void rs_time_fmt(int64_t ms, char *buf, size_t size) {
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int msec = (int)(ms - (int64_t)sec * 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, msec);
}

/* --------------------------------------------------------------- hashing */

uint64_t rs_hash64(const void *data, size_t len) {
    return XXH3_64bits(data, len);
}
uint64_t rs_hash64_seed(const void *data, size_t len, uint64_t seed) {
    return XXH3_64bits_withSeed(data, len, seed);
}
uint64_t rs_hash_str(const char *s) { return XXH3_64bits(s, strlen(s)); }
uint32_t rs_checksum32(const void *data, size_t len, uint32_t seed) {
    return XXH32(data, len, seed);
}

/* ------------------------------------------------------------ allocation */

static void rs_oom(size_t size) {
    rs_error("common", "out of memory allocating %zu bytes", size);
    abort();
}
void *rs_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) rs_oom(size);
    return p;
}
void *rs_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) rs_oom(n * size);
    return p;
}
void *rs_realloc(void *p, size_t size) {
    void *q = realloc(p, size ? size : 1);
    if (!q) rs_oom(size);
    return q;
}
char *rs_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = rs_malloc(n);
    memcpy(p, s, n);
    return p;
}
/* ------------------------------------------------------- lazy zeroing */

/* Background prefaulting.  A page touched for the first time costs a fault
 * (measured ~30 us per 4 KB page on this VM: the hypervisor backs guest
 * memory on first use), so zeroing the preallocated tables up front took
 * seconds, and leaving them lazy would move those faults onto the scoring
 * thread (one or more fresh pages per event until the caches and rings are
 * warm).  rs_zero_lazy hands the whole pages it gives back to one
 * low-priority thread that populates them with MADV_POPULATE_WRITE (Linux
 * 5.14+; the contents are not changed, so it may run while the owner
 * already writes: whoever comes first faults the page).  rs_free drops the
 * regions of a block before freeing it; the thread populates one chunk at a
 * time outside the registry lock (it runs at nice 19: holding the lock it
 * would make the scoring thread wait for it), and a drop of a range that
 * overlaps the chunk waits for its end, so a block is never freed under it.
 * Without kernel support the thread stops and pages fault on first use. */
#define RS_PF_MAX 512
#define RS_PF_CHUNK ((size_t)128 << 10)
/* The queue: rs_prefault() ranges (needed soon: the learning log's next
 * pages, queued by the scoring thread as it writes) first, in their order,
 * then the rs_zero_lazy regions (start-up tables, hundreds of MB that take
 * the nice-19 thread seconds on a busy machine).  With one FIFO the log's
 * pages waited behind those tables and the scoring thread faulted them
 * itself (measured: ~6 000 faults in a 100 000-event burst, every page the
 * records filled, while the thread spent ~0.4 us/event populating
 * tables). */
static struct {
    uintptr_t lo, hi;
    int soon;                /* rs_prefault (1) or rs_zero_lazy (0) */
} rs_pf[RS_PF_MAX];
static int rs_pf_n, rs_pf_nsoon, rs_pf_started, rs_pf_off;
static atomic_int rs_pf_active; /* regions queued: rs_free must look */
static pthread_mutex_t rs_pf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rs_pf_cv = PTHREAD_COND_INITIALIZER;
/* the chunk the thread populates outside the lock ([0, 0): none), and its
 * end's signal (rs_pf_drop waits for an overlapping one) */
static uintptr_t rs_pf_busy_lo, rs_pf_busy_hi;
static pthread_cond_t rs_pf_done_cv = PTHREAD_COND_INITIALIZER;
static int rs_pf_hold, rs_pf_held; /* rs_prefault_hold (tests) */

/* Populated is not yet cheap here: under this VM's hypervisor the first
 * access to each populated page still traps (measured: populating 512 MB
 * 0.1 s, then writing one byte per page 0.9 s; memset of the fresh block 4 s).
 * So the thread also writes each page once, with a compare-and-swap of the
 * byte with itself: it never changes a value, even while the owner writes
 * the same byte (a locked instruction is atomic against any store).  Not
 * under TSan, which would report that benign overlap as a race. */
static void rs_pf_touch(uintptr_t a, uintptr_t b) {
#if defined(__SANITIZE_THREAD__)
    (void)a, (void)b;
#else
    for (uintptr_t q = a; q < b; q += 4096) {
        unsigned char *c = (unsigned char *)q;
        unsigned char v = __atomic_load_n(c, __ATOMIC_RELAXED);
        __atomic_compare_exchange_n(c, &v, v, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
#endif
}

static void *rs_pf_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "rs-prefault");
    /* below the scoring threads: it only uses a core they leave idle */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    pthread_mutex_lock(&rs_pf_mu);
    for (;;) {
        while (rs_pf_n == 0) pthread_cond_wait(&rs_pf_cv, &rs_pf_mu);
        uintptr_t a = rs_pf[0].lo, b = rs_pf[0].hi;
        if (b - a > RS_PF_CHUNK) b = a + RS_PF_CHUNK;
        /* The chunk leaves the queue and is populated outside the lock:
         * this thread runs at nice 19, so on a busy machine it can be off
         * a CPU for tens of ms in the middle of a chunk, and whoever then
         * wanted the lock (the scoring thread queueing the learning log's
         * next pages) waited that long (measured: up to 14 ms a time at
         * max rate on 2 cores).  Only a drop of an overlapping range
         * (rs_pf_drop: a block about to be freed or unmapped) waits for
         * the chunk now. */
        rs_pf[0].lo = b;
        if (b >= rs_pf[0].hi) {
            rs_pf_nsoon -= rs_pf[0].soon;
            memmove(&rs_pf[0], &rs_pf[1],
                    (size_t)(rs_pf_n - 1) * sizeof(rs_pf[0]));
            rs_pf_n--;
        }
        rs_pf_busy_lo = a;
        rs_pf_busy_hi = b;
        while (rs_pf_hold) { /* a test holds the chunk (lock released) */
            rs_pf_held = 1;
            pthread_cond_wait(&rs_pf_cv, &rs_pf_mu);
        }
        rs_pf_held = 0;
        pthread_mutex_unlock(&rs_pf_mu);
        int rc = madvise((void *)a, b - a, MADV_POPULATE_WRITE);
        int unsupported = rc != 0 && errno == EINVAL;
        /* touched only if populated: a page that could not be (no memory,
         * a file page that cannot be read) is left to fault where it is
         * used, never here */
        if (rc == 0) rs_pf_touch(a, b);
        pthread_mutex_lock(&rs_pf_mu);
        rs_pf_busy_lo = rs_pf_busy_hi = 0;
        pthread_cond_broadcast(&rs_pf_done_cv);
        if (unsupported) {
            rs_pf_off = 1; /* kernel without MADV_POPULATE_WRITE */
            rs_pf_n = rs_pf_nsoon = 0;
        }
        if (!rs_pf_n) atomic_store(&rs_pf_active, 0);
    }
    return NULL;
}

/* Queue [lo, hi): a `soon` range after the other soon ones (ahead of
 * every lazy region), a lazy region at the back. */
static void rs_pf_add(uintptr_t lo, uintptr_t hi, int soon) {
    pthread_mutex_lock(&rs_pf_mu);
    if (!rs_pf_off && rs_pf_n < RS_PF_MAX) {
        int at = soon ? rs_pf_nsoon : rs_pf_n;
        memmove(&rs_pf[at + 1], &rs_pf[at],
                (size_t)(rs_pf_n - at) * sizeof(rs_pf[0]));
        rs_pf[at].lo = lo;
        rs_pf[at].hi = hi;
        rs_pf[at].soon = soon;
        rs_pf_nsoon += soon;
        rs_pf_n++;
        atomic_store(&rs_pf_active, 1);
        if (!rs_pf_started) {
            pthread_t th;
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&th, &at, rs_pf_main, NULL) == 0)
                rs_pf_started = 1;
            else /* pages fault on first use */
                rs_pf_off = 1, rs_pf_n = rs_pf_nsoon = 0;
            pthread_attr_destroy(&at);
        }
        pthread_cond_signal(&rs_pf_cv);
    }
    pthread_mutex_unlock(&rs_pf_mu);
}

/* Drop the queued regions that overlap [a, e) (whole regions: a region
 * is never split, it may only be populated less), and wait for the chunk
 * in progress if it overlaps: once this returns the thread does not touch
 * [a, e). */
static void rs_pf_drop(uintptr_t a, uintptr_t e) {
    pthread_mutex_lock(&rs_pf_mu);
    int j = 0, soon = 0;
    for (int i = 0; i < rs_pf_n; i++)
        if (rs_pf[i].hi <= a || rs_pf[i].lo >= e) {
            soon += rs_pf[i].soon;
            rs_pf[j++] = rs_pf[i];
        }
    rs_pf_n = j;
    rs_pf_nsoon = soon;
    while (rs_pf_busy_hi > a && rs_pf_busy_lo < e)
        pthread_cond_wait(&rs_pf_done_cv, &rs_pf_mu);
    if (!rs_pf_n && !rs_pf_busy_hi) atomic_store(&rs_pf_active, 0);
    pthread_mutex_unlock(&rs_pf_mu);
}

/* Drop the queued regions inside the block at p (about to be freed). */
static void rs_pf_forget(void *p) {
    uintptr_t a = (uintptr_t)p;
    rs_pf_drop(a, a + malloc_usable_size(p));
}

void rs_prefault(void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p, e = a + bytes;
    uintptr_t lo = (a + 4095) & ~(uintptr_t)4095, hi = e & ~(uintptr_t)4095;
    if (hi > lo) rs_pf_add(lo, hi, 1);
}

void rs_prefault_cancel(void *p, size_t bytes) {
    /* always under the lock (rare): the region may have been queued by
     * another thread, and a chunk in progress is waited for */
    rs_pf_drop((uintptr_t)p, (uintptr_t)p + bytes);
}

int rs_prefault_hold(int on) {
    pthread_mutex_lock(&rs_pf_mu);
    rs_pf_hold = on;
    int held = rs_pf_held;
    if (!on) pthread_cond_broadcast(&rs_pf_cv);
    pthread_mutex_unlock(&rs_pf_mu);
    return held;
}

void *rs_prefault_next(void) {
    pthread_mutex_lock(&rs_pf_mu);
    void *p = rs_pf_n ? (void *)rs_pf[0].lo : NULL;
    pthread_mutex_unlock(&rs_pf_mu);
    return p;
}

size_t rs_prefault_pending(void) {
    pthread_mutex_lock(&rs_pf_mu);
    size_t n = 0;
    for (int i = 0; i < rs_pf_n; i++) n += rs_pf[i].hi - rs_pf[i].lo;
    n += rs_pf_busy_hi - rs_pf_busy_lo;
    pthread_mutex_unlock(&rs_pf_mu);
    return n;
}

void *rs_aligned_calloc(size_t n, size_t size) {
    size_t bytes = n * size;
    if (size && bytes / size != n) rs_oom(SIZE_MAX);
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) rs_oom(bytes);
    rs_zero_lazy(p, bytes ? bytes : 64);
    return p;
}

void rs_zero_lazy(void *p, size_t bytes) {
    static long pg;
    if (!pg) {
        long v = sysconf(_SC_PAGESIZE);
        pg = v > 0 ? v : 4096;
    }
    if (bytes < RS_LAZY_ZERO_MIN) {
        memset(p, 0, bytes);
        return;
    }
    uintptr_t a = (uintptr_t)p, end = a + bytes;
    uintptr_t lo = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t hi = end & ~((uintptr_t)pg - 1);
    memset(p, 0, lo - a);
    memset((void *)hi, 0, end - hi);
    /* Heap memory (brk or mmap) is private and anonymous: after
     * MADV_DONTNEED its pages read as zeros.  Should the call fail, zero
     * them the slow way. */
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
        memset((void *)lo, 0, hi - lo);
    else if (hi > lo)
        rs_pf_add(lo, hi, 0);
}
void rs_free(void *p) {
    if (p && atomic_load_explicit(&rs_pf_active, memory_order_relaxed))
        rs_pf_forget(p);
    free(p);
}

size_t rs_strlcpy(char *dst, const char *src, size_t size) {
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

/* ------------------------------------------------------------------- rng */

static uint64_t rs_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline uint64_t rs_rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}
void rs_rng_seed(rs_rng_t *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = rs_splitmix64(&seed);
}
uint64_t rs_rng_u64(rs_rng_t *rng) {
    uint64_t *s = rng->s;
    const uint64_t result = rs_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rs_rotl(s[3], 45);
    return result;
}
double rs_rng_uniform(rs_rng_t *rng) {
    return (double)(rs_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
}
double rs_rng_normal(rs_rng_t *rng) {
    /* Box-Muller; the second value is discarded to keep the state simple
     * and the stream reproducible regardless of call interleaving. */
    double u1 = rs_rng_uniform(rng), u2 = rs_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
double rs_rng_exp(rs_rng_t *rng, double rate) {
    double u = rs_rng_uniform(rng);
    return -log1p(-u) / rate;
}
uint64_t rs_rng_below(rs_rng_t *rng, uint64_t n) {
    return n ? rs_rng_u64(rng) % n : 0;
}
int rs_rng_poisson(rs_rng_t *rng, double lambda) {
    if (lambda <= 0) return 0;
    if (lambda > 30) {
        double v = lambda + sqrt(lambda) * rs_rng_normal(rng);
        return v < 0 ? 0 : (int)(v + 0.5);
    }
    double L = exp(-lambda), p = 1.0;
    int k = 0;
    do { k++; p *= rs_rng_uniform(rng); } while (p > L);
    return k - 1;
}

/* ------------------------------------------------------------ kv list */

void rs_kv_init(rs_kv_t *kv) { memset(kv, 0, sizeof(*kv)); }

void rs_kv_set(rs_kv_t *kv, const char *key, const char *val) {
    for (int i = 0; i < kv->cnt; i++)
        if (!strcmp(kv->keys[i], key)) {
            /* Copy before freeing: val may be kv->vals[i] itself
             * (rs_kv_copy(kv, kv), or set(k, get(k))). */
            char *copy = rs_strdup(val);
            free(kv->vals[i]);
            kv->vals[i] = copy;
            return;
        }
    if (kv->cnt == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 8;
        kv->keys = rs_realloc(kv->keys, sizeof(char *) * (size_t)kv->cap);
        kv->vals = rs_realloc(kv->vals, sizeof(char *) * (size_t)kv->cap);
    }
    kv->keys[kv->cnt] = rs_strdup(key);
    kv->vals[kv->cnt] = rs_strdup(val);
    kv->cnt++;
}

const char *rs_kv_get(const rs_kv_t *kv, const char *key) {
    for (int i = 0; i < kv->cnt; i++)
        if (!strcmp(kv->keys[i], key)) return kv->vals[i];
    return NULL;
}

void rs_kv_copy(rs_kv_t *dst, const rs_kv_t *src) {
    for (int i = 0; i < src->cnt; i++)
        rs_kv_set(dst, src->keys[i], src->vals[i]);
}

void rs_kv_free(rs_kv_t *kv) {
    for (int i = 0; i < kv->cnt; i++) {
        free(kv->keys[i]);
        free(kv->vals[i]);
    }
    free(kv->keys);
    free(kv->vals);
    rs_kv_init(kv);
}

/* ---------------------------------------------------------- memory limit */

/* First number in a file ("max" or unreadable: UINT64_MAX). */
static uint64_t rs_mem_file_u64(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return UINT64_MAX;
    unsigned long long v = 0;
    int ok = fscanf(fp, "%llu", &v) == 1;
    fclose(fp);
    return ok ? (uint64_t)v : UINT64_MAX;
}

uint64_t rs_mem_limit(char *what, size_t what_size) {
    uint64_t lim = UINT64_MAX;
    const char *w = "unknown";
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        uint64_t unit = si.mem_unit ? si.mem_unit : 1;
        lim = ((uint64_t)si.totalram + (uint64_t)si.totalswap) * unit;
        w = si.totalswap ? "RAM + swap" : "RAM (no swap)";
    }
    /* cgroup v2: memory.max (+ memory.swap.max) of our own cgroup, as
     * seen at the usual mount point; v1: memory.limit_in_bytes. */
    uint64_t cg = rs_mem_file_u64("/sys/fs/cgroup/memory.max");
    if (cg != UINT64_MAX) {
        uint64_t sw = rs_mem_file_u64("/sys/fs/cgroup/memory.swap.max");
        if (sw != UINT64_MAX && cg + sw > cg) cg += sw;
        else if (sw == UINT64_MAX) cg = UINT64_MAX; /* swap unlimited */
    } else {
        cg = rs_mem_file_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    }
    if (cg < lim) {
        lim = cg;
        w = "cgroup memory limit";
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)rl.rlim_cur < lim) {
        lim = (uint64_t)rl.rlim_cur;
        w = "RLIMIT_AS (ulimit -v)";
    }
    if (what) rs_strlcpy(what, w, what_size);
    return lim;
}
