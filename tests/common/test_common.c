/* test_common.c -- unit tests for common/common.c: errors, durations,
 * timestamps, hashing, rng determinism, kv list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "common/common.h"
#include "common/tz.h"

static void test_errors(void **state) {
    (void)state;
    for (int e = 0; e < RS_ERR__CNT; e++) {
        assert_non_null(rs_err_str((rs_err_t)e));
        assert_string_not_equal(rs_err_str((rs_err_t)e), "unknown error");
    }
    assert_string_equal(rs_err_str(RS_ERR__CNT), "unknown error");
    assert_string_equal(rs_err_str((rs_err_t)-1), "unknown error");
    assert_true(rs_err_retriable(RS_ERR_AGAIN));
    assert_true(rs_err_retriable(RS_ERR_IO));
    assert_true(rs_err_retriable(RS_ERR_TIMEOUT));
    assert_false(rs_err_retriable(RS_ERR_CONFIG));
    assert_false(rs_err_retriable(RS_OK));

    char buf[16];
    assert_int_equal(rs_errf(buf, sizeof(buf), RS_ERR_INVALID, "x=%d", 42),
                     RS_ERR_INVALID);
    assert_string_equal(buf, "x=42");
    /* Truncates, NUL-terminates, tolerates NULL. */
    rs_errf(buf, sizeof(buf), RS_ERR_INVALID, "%s", "0123456789abcdefghij");
    assert_string_equal(buf, "0123456789abcde");
    assert_int_equal(rs_errf(NULL, 0, RS_ERR_IO, "nothing"), RS_ERR_IO);
}

static void test_log_level_parse(void **state) {
    (void)state;
    assert_int_equal(rs_log_level_parse("debug"), RS_LOG_DEBUG);
    assert_int_equal(rs_log_level_parse("WARN"), RS_LOG_WARN);
    assert_int_equal(rs_log_level_parse("off"), RS_LOG_OFF);
    assert_int_equal(rs_log_level_parse("verbose"), -1);
}

static void test_duration_parse(void **state) {
    (void)state;
    static const struct { const char *s; int64_t ms; } ok[] = {
        {"250ms", 250}, {"10s", 10000}, {"5m", 300000}, {"1h", 3600000},
        {"7d", 604800000LL}, {"2w", 1209600000LL}, {"1500", 1500},
        {"0", 0}, {"1.5s", 1500}, {"0.5m", 30000}, {"10 s", 10000}};
    for (size_t i = 0; i < RS_ARRAY_LEN(ok); i++) {
        int64_t ms = -1;
        assert_int_equal(rs_duration_parse(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *bad[] = {"", "abc", "-5s", "10x", "s", "nan",
                                "inf", "10ss", "1e30d", "5 m s"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        int64_t ms = 77;
        assert_int_equal(rs_duration_parse(bad[i], &ms), -1);
        assert_int_equal(ms, 77); /* untouched on error */
    }
    int64_t ms;
    assert_int_equal(rs_duration_parse(NULL, &ms), -1);
}

static void test_duration_fmt(void **state) {
    (void)state;
    static const struct { int64_t ms; const char *s; } cases[] = {
        {604800000LL, "1w"}, {86400000LL, "1d"}, {90000, "90s"},
        {250, "250ms"}, {0, "0ms"}, {3600000, "1h"}, {1209600000LL, "2w"},
        {172800000LL, "2d"}, {1500, "1500ms"}};
    char buf[32];
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        rs_duration_fmt(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
    }
    /* Round trip through the parser. */
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    for (int i = 0; i < 1000; i++) {
        int64_t ms = (int64_t)rs_rng_below(&rng, 100) *
                     (int64_t[]){1, 1000, 60000, 86400000}[i % 4], back;
        rs_duration_fmt(ms, buf, sizeof(buf));
        assert_int_equal(rs_duration_parse(buf, &back), 0);
        assert_int_equal(back, ms);
    }
}

static void test_time_parse(void **state) {
    (void)state;
    static const struct { const char *s; int64_t ms; } ok[] = {
        {"2024-03-01 12:00:00", 1709294400000LL},
        {"2024-03-01T12:00:00Z", 1709294400000LL},
        {"2024-03-01T12:00:00.123Z", 1709294400123LL},
        {"2024-03-01 12:00:00.5", 1709294400500LL},
        {"2024-03-01 12:00:00.123456", 1709294400123LL},
        {"2024-03-01", 1709251200000LL},
        {"\"2024-03-01 12:00:00\"", 1709294400000LL}, /* CSV quoting */
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2000-02-29 00:00:00", 951782400000LL},      /* leap day */
        /* Epoch seconds below 1e11, milliseconds from 1e11 up. */
        {"1709294400", 1709294400000LL},
        {"1709294400.25", 1709294400250LL},
        {"1709294400123", 1709294400123LL},
        {"99999999999", 99999999999000LL},
        {"100000000000", 100000000000LL},
        {"0", 0}};
    for (size_t i = 0; i < RS_ARRAY_LEN(ok); i++) {
        int64_t ms = 0;
        if (rs_time_parse(ok[i].s, strlen(ok[i].s), &ms) != 0)
            fail_msg("rejected '%s'", ok[i].s);
        if (ms != ok[i].ms)
            fail_msg("'%s' -> %lld, want %lld", ok[i].s, (long long)ms,
                     (long long)ok[i].ms);
    }
    static const char *bad[] = {
        "", "garbage", "2024-13-01 12:00:00", "2024-03-01 25:00:00",
        "2024-03-01 12:61:00", "2024-03-01 -1:00:00", "2024-03-00",
        "2024-03-01X12:00:00", "2024-03-01 12:00:00+02:00", "12abc",
        "1e300", "nan", "inf", "\"\""};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        if (rs_time_parse(bad[i], strlen(bad[i]), &ms) == 0)
            fail_msg("accepted '%s' as %lld", bad[i], (long long)ms);
    }
    /* len is honoured: the tail after len is ignored. */
    int64_t ms;
    const char *s = "2024-03-01 12:00:00garbage";
    assert_int_equal(rs_time_parse(s, 19, &ms), 0);
    assert_int_equal(ms, 1709294400000LL);
    char big[100];
    memset(big, '1', sizeof(big));
    assert_int_equal(rs_time_parse(big, sizeof(big), &ms), -1);
}

static void test_time_fmt_roundtrip(void **state) {
    (void)state;
    char buf[40];
    rs_time_fmt(1709294400123LL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-03-01T12:00:00.123Z");
    rs_time_fmt(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    rs_time_fmt(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");

    rs_rng_t rng;
    rs_rng_seed(&rng, 1234);
    for (int i = 0; i < 20000; i++) {
        /* 1900 .. 2100 */
        int64_t ms = (int64_t)rs_rng_below(&rng, 6311390400000ULL) -
                     2208988800000LL;
        int64_t back = 0;
        rs_time_fmt(ms, buf, sizeof(buf));
        assert_int_equal(rs_time_parse(buf, strlen(buf), &back), 0);
        if (back != ms)
            fail_msg("%lld -> %s -> %lld", (long long)ms, buf,
                     (long long)back);
    }
}

static void test_clocks(void **state) {
    (void)state;
    int64_t a = rs_clock_mono_ns(), b = rs_clock_mono_ns();
    assert_true(b >= a);
    /* After 2020 and consistent across units. */
    int64_t ms = rs_clock_wall_ms(), us = rs_clock_wall_us();
    assert_true(ms > 1577836800000LL);
    assert_true(llabs(us / 1000 - ms) < 1000);
    assert_true(rs_clock_mono_us() > 0);
}

static void test_hash(void **state) {
    (void)state;
    /* XXH3_64bits("") from the xxHash reference: persisted hashes depend
     * on this staying put. */
    assert_true(rs_hash64("", 0) == 0x2D06800538D394C2ULL);
    assert_true(rs_hash_str("card:1234") == rs_hash64("card:1234", 9));
    assert_true(rs_hash64("a", 1) != rs_hash64("b", 1));
    assert_true(rs_hash64_seed("a", 1, 1) != rs_hash64_seed("a", 1, 2));
    assert_true(rs_hash64_seed("abc", 3, 0) == rs_hash64("abc", 3));
    assert_true(rs_checksum32("abc", 3, 0) == rs_checksum32("abc", 3, 0));
    assert_true(rs_checksum32("abc", 3, 0) != rs_checksum32("abd", 3, 0));
}

static void test_alloc_strlcpy(void **state) {
    (void)state;
    char dst[5];
    assert_int_equal(rs_strlcpy(dst, "hello world", sizeof(dst)), 11);
    assert_string_equal(dst, "hell");
    assert_int_equal(rs_strlcpy(dst, "hi", sizeof(dst)), 2);
    assert_string_equal(dst, "hi");
    assert_int_equal(rs_strlcpy(dst, "xyz", 0), 3);
    assert_string_equal(dst, "hi");

    double *v = rs_aligned_calloc(13, sizeof(double));
    assert_int_equal((uintptr_t)v % 64, 0);
    for (int i = 0; i < 13; i++) assert_true(v[i] == 0.0);
    rs_free(v);
    char *s = rs_strdup("abc");
    assert_string_equal(s, "abc");
    free(s);
}

/* rs_zero_lazy / large rs_aligned_calloc: zero exactly the asked range
 * (unaligned ends memset, whole pages given back to the kernel), whatever
 * the block held before, and nothing outside it. */
static void test_zero_lazy(void **state) {
    (void)state;
    const size_t n = 3 * RS_LAZY_ZERO_MIN + 12345;
    unsigned char *b = rs_malloc(n);
    memset(b, 0xa5, n);
    const size_t off = 777, len = n - 777 - 555;
    rs_zero_lazy(b + off, len);
    for (size_t i = 0; i < n; i++) {
        unsigned char want = (i >= off && i < off + len) ? 0 : 0xa5;
        if (b[i] != want) fail_msg("byte %zu: %#x, want %#x", i, b[i], want);
    }
    /* the pages read as zeros are usable memory */
    memset(b + off, 0x11, len);
    assert_int_equal(b[off + len / 2], 0x11);
    rs_free(b);
    /* small range: plain memset */
    unsigned char small[100];
    memset(small, 1, sizeof(small));
    rs_zero_lazy(small + 10, 50);
    assert_int_equal(small[9], 1);
    assert_int_equal(small[10], 0);
    assert_int_equal(small[59], 0);
    assert_int_equal(small[60], 1);
    /* a large zeroed allocation, made after freeing a dirtied one of the
     * same size (likely the same memory), reads as zeros, 64-aligned */
    for (int r = 0; r < 3; r++) {
        unsigned char *d = rs_aligned_calloc(n, 1);
        assert_int_equal((uintptr_t)d % 64, 0);
        for (size_t i = 0; i < n; i += 97)
            if (d[i]) fail_msg("round %d: byte %zu not zero", r, i);
        assert_int_equal(d[n - 1], 0);
        memset(d, 0xff, n);
        rs_free(d);
    }
    /* the background prefault never changes what the owner wrote, and a
     * block freed while its pages are queued is dropped from the queue */
    unsigned char *w = rs_aligned_calloc(n, 1);
    for (size_t i = 0; i < n; i += 4096) w[i] = (unsigned char)(i / 4096);
    unsigned char *gone = rs_aligned_calloc(4 * RS_LAZY_ZERO_MIN, 1);
    rs_free(gone);
    for (int i = 0; i < 200 && rs_prefault_pending(); i++) usleep(10000);
    for (size_t i = 0; i < n; i += 4096)
        if (w[i] != (unsigned char)(i / 4096)) fail_msg("byte %zu changed", i);
    for (size_t i = 1; i < n; i += 4096) assert_int_equal(w[i], 0);
    rs_free(w);
}

/* rs_prefault on a shared file mapping (the learning log's segments):
 * the file's bytes never change, whether the thread got there first or
 * the owner wrote first; a range cancelled and then unmapped is never
 * touched again (the test would crash). */
static void test_prefault_file(void **state) {
    (void)state;
    char path[] = "/tmp/rs-test-prefault-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    const size_t n = (size_t)8 << 20;
    assert_int_equal(posix_fallocate(fd, 0, (off_t)n), 0);
    unsigned char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    for (size_t i = 0; i < n; i += 8192) m[i + 1] = (unsigned char)(i >> 13);
    rs_prefault(m + 100, n - 200); /* unaligned ends: whole pages only */
    for (size_t i = 4096; i < n; i += 8192) m[i + 2] = 0x5a;
    for (int i = 0; i < 300 && rs_prefault_pending(); i++) usleep(10000);
    assert_int_equal(rs_prefault_pending(), 0);
    for (size_t i = 0; i < n; i += 8192) {
        if (m[i + 1] != (unsigned char)(i >> 13)) fail_msg("byte %zu", i + 1);
        if (m[i + 4096 + 2] != 0x5a) fail_msg("byte %zu", i + 4096 + 2);
        if (m[i] || m[i + 4096]) fail_msg("page %zu written", i / 4096);
    }
    /* cancelled before the unmap: nothing queued is left for it */
    for (int r = 0; r < 20; r++) {
        unsigned char *q = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED,
                                fd, 0);
        assert_true(q != MAP_FAILED);
        rs_prefault(q, n);
        rs_prefault_cancel(q, n);
        munmap(q, n);
    }
    assert_int_equal(rs_prefault_pending(), 0);
    munmap(m, n);
    close(fd);
}

/* The queue serves rs_prefault ranges (the learning log's next pages,
 * needed soon) before rs_zero_lazy regions (start-up tables), each kind in
 * its order; a cancel keeps that order.  Seen with the thread held on a
 * chunk of its own, so the queue does not move meanwhile. */
static void test_prefault_soon_first(void **state) {
    (void)state;
    const size_t n = (size_t)4 << 20, hn = (size_t)128 << 10;
    unsigned char *h = mmap(NULL, hn, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *lz = mmap(NULL, n, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *s1 = mmap(NULL, n, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *s2 = mmap(NULL, n, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(h != MAP_FAILED && lz != MAP_FAILED && s1 != MAP_FAILED &&
                s2 != MAP_FAILED);
    for (int i = 0; i < 300 && rs_prefault_pending(); i++) usleep(10000);
    rs_prefault_hold(1);
    rs_prefault(h, hn); /* one chunk: the thread takes it and is held */
    if (!rs_prefault_pending()) { /* kernel without MADV_POPULATE_WRITE */
        rs_prefault_hold(0);
        munmap(h, hn);
        munmap(lz, n);
        munmap(s1, n);
        munmap(s2, n);
        skip();
    }
    int held = 0;
    for (int i = 0; i < 60000 && !held; i++) {
        held = rs_prefault_hold(1);
        if (!held) usleep(1000);
    }
    assert_true(held);
    assert_null(rs_prefault_next());
    rs_zero_lazy(lz, n);
    assert_ptr_equal(rs_prefault_next(), lz);
    rs_prefault(s1, n); /* ahead of the lazy region */
    assert_ptr_equal(rs_prefault_next(), s1);
    rs_prefault(s2, n); /* after s1, still ahead of it */
    assert_ptr_equal(rs_prefault_next(), s1);
    rs_prefault_cancel(s1, n);
    assert_ptr_equal(rs_prefault_next(), s2);
    rs_prefault_cancel(s2, n);
    assert_ptr_equal(rs_prefault_next(), lz);
    rs_prefault(s1, n); /* the count of soon ranges survived the cancels */
    assert_ptr_equal(rs_prefault_next(), s1);
    assert_int_equal(rs_prefault_pending(), hn + 2 * n);
    rs_prefault_hold(0);
    for (int i = 0; i < 1000 && rs_prefault_pending(); i++) usleep(10000);
    assert_int_equal(rs_prefault_pending(), 0);
    munmap(h, hn);
    munmap(lz, n);
    munmap(s1, n);
    munmap(s2, n);
}

/* The background thread populates a chunk outside the registry lock: while
 * it is in the middle of one (held here, as when the nice-19 thread is off
 * a CPU on a busy machine) queueing more pages returns at once, the chunk
 * still counts as pending, and only a cancel of a range overlapping the
 * chunk waits for it, so a range cancelled is never touched after. */
typedef struct {
    void *p;
    size_t n;
    atomic_int done;
} rs_pf_cancel_arg_t;

static void *rs_pf_cancel_main(void *v) {
    rs_pf_cancel_arg_t *c = v;
    rs_prefault_cancel(c->p, c->n);
    atomic_store(&c->done, 1);
    return NULL;
}

static void test_prefault_chunk_unlocked(void **state) {
    (void)state;
    const size_t n = (size_t)4 << 20;
    unsigned char *m = mmap(NULL, n, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *m2 = mmap(NULL, n, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED && m2 != MAP_FAILED);
    for (int i = 0; i < 300 && rs_prefault_pending(); i++) usleep(10000);
    rs_prefault_hold(1);
    rs_prefault(m, n);
    if (!rs_prefault_pending()) { /* kernel without MADV_POPULATE_WRITE */
        rs_prefault_hold(0);
        munmap(m, n);
        munmap(m2, n);
        skip();
    }
    int held = 0;
    for (int i = 0; i < 60000 && !held; i++) { /* the thread's next turn */
        held = rs_prefault_hold(1);
        if (!held) usleep(1000);
    }
    assert_true(held);
    /* the chunk is off the queue, in progress: still pending */
    assert_int_equal(rs_prefault_pending(), n);
    /* queueing (the scoring thread's learning log) does not wait for it */
    rs_prefault(m2, n);
    assert_int_equal(rs_prefault_pending(), 2 * n);
    rs_prefault_cancel(m2, n); /* no overlap with the chunk: at once */
    assert_int_equal(rs_prefault_pending(), n);
    /* a cancel overlapping the chunk waits for its end */
    rs_pf_cancel_arg_t c = {m, n, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rs_pf_cancel_main, &c), 0);
    usleep(50000);
    assert_int_equal(atomic_load(&c.done), 0);
    rs_prefault_hold(0);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&c.done), 1);
    assert_int_equal(rs_prefault_pending(), 0);
    munmap(m, n);
    munmap(m2, n);
}

static void test_rng_determinism(void **state) {
    (void)state;
    /* Golden values from an independent xoshiro256** + splitmix64
     * implementation: the stream must not change across platforms. */
    rs_rng_t rng;
    rs_rng_seed(&rng, 42);
    assert_true(rs_rng_u64(&rng) == 0x15780b2e0c2ec716ULL);
    assert_true(rs_rng_u64(&rng) == 0x6104d9866d113a7eULL);
    assert_true(rs_rng_u64(&rng) == 0xae17533239e499a1ULL);
    rs_rng_seed(&rng, 0);
    assert_true(rs_rng_u64(&rng) == 0x99ec5f36cb75f2b4ULL);

    rs_rng_t a, b, c;
    rs_rng_seed(&a, 99);
    rs_rng_seed(&b, 99);
    rs_rng_seed(&c, 100);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(rs_rng_normal(&a) == rs_rng_normal(&b));
        assert_true(rs_rng_poisson(&a, 3.5) == rs_rng_poisson(&b, 3.5));
        uint64_t x = rs_rng_u64(&a);
        assert_true(x == rs_rng_u64(&b));
        differ += x != rs_rng_u64(&c);
    }
    assert_true(differ > 990);
}

static void test_rng_distributions(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 2024);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0, se = 0, sp = 0, spl = 0;
    for (int i = 0; i < n; i++) {
        double u = rs_rng_uniform(&rng);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        double z = rs_rng_normal(&rng);
        sn += z;
        sn2 += z * z;
        double e = rs_rng_exp(&rng, 2.0);
        assert_true(e >= 0);
        se += e;
        int p = rs_rng_poisson(&rng, 4.0);
        assert_true(p >= 0);
        sp += p;
        spl += rs_rng_poisson(&rng, 100.0);
        assert_true(rs_rng_below(&rng, 7) < 7);
    }
    assert_true(fabs(su / n - 0.5) < 0.005);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
    assert_true(fabs(se / n - 0.5) < 0.01);
    assert_true(fabs(sp / n - 4.0) < 0.03);
    assert_true(fabs(spl / n - 100.0) < 0.2);
    assert_int_equal(rs_rng_poisson(&rng, 0), 0);
    assert_true(rs_rng_below(&rng, 0) == 0);
}

static void test_kv(void **state) {
    (void)state;
    rs_kv_t kv, copy;
    rs_kv_init(&kv);
    assert_null(rs_kv_get(&kv, "a"));
    rs_kv_set(&kv, "bootstrap.servers", "h:9092");
    rs_kv_set(&kv, "client.id", "rs");
    rs_kv_set(&kv, "client.id", "rs2"); /* replace, keeps order */
    assert_int_equal(kv.cnt, 2);
    assert_string_equal(rs_kv_get(&kv, "client.id"), "rs2");
    assert_string_equal(kv.keys[0], "bootstrap.servers");

    /* Self-assignment must not read freed memory (ASan checks this). */
    rs_kv_set(&kv, "client.id", rs_kv_get(&kv, "client.id"));
    assert_string_equal(rs_kv_get(&kv, "client.id"), "rs2");
    rs_kv_copy(&kv, &kv);
    assert_int_equal(kv.cnt, 2);

    /* Growth past the initial capacity. */
    char k[16], v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        rs_kv_set(&kv, k, v);
    }
    assert_int_equal(kv.cnt, 102);
    assert_string_equal(rs_kv_get(&kv, "k57"), "v57");

    rs_kv_init(&copy);
    rs_kv_set(&copy, "client.id", "other");
    rs_kv_copy(&copy, &kv);
    assert_int_equal(copy.cnt, 102);
    assert_string_equal(rs_kv_get(&copy, "client.id"), "rs2");
    rs_kv_free(&kv);
    assert_int_equal(kv.cnt, 0);
    assert_null(rs_kv_get(&kv, "k1"));
    assert_string_equal(rs_kv_get(&copy, "k99"), "v99"); /* deep copy */
    rs_kv_free(&copy);
    rs_kv_free(&copy); /* free of an emptied list is harmless */
}

/* A TZif v2 zone whose last transition is at the largest instant and whose
 * footer (no DST) names another offset: the footer's change would be one
 * second after it, which does not exist (found by fuzz_tz: signed overflow). */
static size_t tzif_put(uint8_t *p, uint32_t timecnt, int tsz, int64_t at,
                       int32_t off) {
    size_t n = 0;
    memcpy(p, "TZif2", 5);
    memset(p + 5, 0, 15);
    n = 20;
    uint32_t cnt[6] = {0, 0, 0, timecnt, 1, 4};
    for (int i = 0; i < 6; i++, n += 4)
        for (int b = 0; b < 4; b++) p[n + b] = (uint8_t)(cnt[i] >> (24 - 8 * b));
    for (uint32_t t = 0; t < timecnt; t++, n += (size_t)tsz)
        for (int b = 0; b < tsz; b++)
            p[n + b] = (uint8_t)((uint64_t)at >> (8 * (tsz - 1 - b)));
    for (uint32_t t = 0; t < timecnt; t++) p[n++] = 0; /* type index */
    for (int b = 0; b < 4; b++) p[n + b] = (uint8_t)((uint32_t)off >> (24 - 8 * b));
    n += 4;
    p[n++] = 0; /* isdst */
    p[n++] = 0; /* abbreviation index */
    memcpy(p + n, "ABC", 4);
    return n + 4;
}

static void test_tz_last_transition_at_max(void **state) {
    (void)state;
    uint8_t buf[256];
    size_t n = tzif_put(buf, 0, 4, 0, 3600);
    n += tzif_put(buf + n, 1, 8, INT64_MAX, 3600);
    memcpy(buf + n, "\nUTC0\n", 6);
    n += 6;
    char es[256];
    rs_tz_t *tz = rs_tz_parse(buf, n, "max", es, sizeof(es));
    assert_non_null(tz);
    int64_t from, until;
    assert_int_equal(rs_tz_offset(tz, 0, &from, &until), 3600);
    assert_int_equal(rs_tz_offset(tz, INT64_MAX / 2, NULL, NULL), 3600);
    rs_tz_destroy(tz);
    /* the same footer after an ordinary transition still applies */
    n = tzif_put(buf, 0, 4, 0, 3600);
    n += tzif_put(buf + n, 1, 8, 86400, 3600);
    memcpy(buf + n, "\nUTC0\n", 6);
    n += 6;
    tz = rs_tz_parse(buf, n, "footer", es, sizeof(es));
    assert_non_null(tz);
    assert_int_equal(rs_tz_offset(tz, 1000LL * 86400 * 400, NULL, NULL), 0);
    rs_tz_destroy(tz);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_fmt),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_fmt_roundtrip),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_zero_lazy),
        cmocka_unit_test(test_prefault_file),
        cmocka_unit_test(test_prefault_chunk_unlocked),
        cmocka_unit_test(test_prefault_soon_first),
        cmocka_unit_test(test_alloc_strlcpy),
        cmocka_unit_test(test_rng_determinism),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_tz_last_transition_at_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
