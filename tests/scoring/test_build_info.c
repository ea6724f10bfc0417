/* test_build_info.c -- scoring/build_info.c: the /proc/<pid>/stat parser on
 * fixed text (command names with spaces and parentheses, short and junk
 * input), and the metrics text of this very process (build info labels,
 * process metrics present and plausible).  promtool checks the exposition
 * format in the e2e test (tests/e2e/e2e_kcat.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scoring/build_info.h"

/* A real line (Linux 6.x), pid 4242, command "risk stream) x". */
static const char stat_line[] =
    "4242 (risk stream) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 "
    "250 50 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615 1 1 0 "
    "0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

static void test_stat_parse(void **state) {
    (void)state;
    rs_proc_stat_t ps;
    assert_int_equal(rs_proc_stat_parse(stat_line, 100, 4096, 1.7e9, &ps), 0);
    /* utime 250 + stime 50 ticks at 100 Hz */
    assert_true(fabs(ps.cpu_seconds - 3.0) < 1e-9);
    assert_int_equal(ps.threads, 7);
    /* starttime 1000 ticks after boot */
    assert_true(fabs(ps.start_time_s - (1.7e9 + 10.0)) < 1e-6);
    assert_true(fabs(ps.vsize_bytes - 123456789.0) < 0.5);
    assert_true(fabs(ps.rss_bytes - 2048.0 * 4096) < 0.5);
}

static void test_stat_parse_bad(void **state) {
    (void)state;
    rs_proc_stat_t ps;
    const char *bad[] = {"", "4242 risk S 1", "4242 (x) S 1 2 3",
                         "4242 (x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 "
                         "abc 50 0 0 20 0 7 0 1000 1 2",
                         NULL};
    for (int i = 0; i < 4; i++)
        assert_int_equal(rs_proc_stat_parse(bad[i], 100, 4096, 0, &ps), -1);
    assert_int_equal(rs_proc_stat_parse(NULL, 100, 4096, 0, &ps), -1);
    assert_int_equal(rs_proc_stat_parse(stat_line, 0, 4096, 0, &ps), -1);
}

/* The value of metric line "NAME VALUE" in text, or NAN. */
static double metric(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, name, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return NAN;
}

static void test_prometheus_self(void **state) {
    (void)state;
    rs_http_buf_t *b = rs_http_buf_new();
    rs_build_info_prometheus(b);
    const char *t = rs_http_buf_data(b);
    rs_build_info_t bi;
    rs_build_info_get(&bi);
    assert_non_null(strstr(t, "# TYPE riskstream_build_info gauge\n"));
    char want[256];
    snprintf(want, sizeof(want), "riskstream_build_info{version=\"%s\",commit=\"%s\"",
             bi.version, bi.commit);
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(t, "librdkafka=\""));
    assert_non_null(strstr(t, "openblas=\""));
    assert_true(strlen(bi.rdkafka) > 0 && strcmp(bi.openblas, "unknown"));
    assert_string_equal(bi.hiredis, "0.14.1"); /* Debian 12's */

    double rss = metric(t, "process_resident_memory_bytes");
    double cpu = metric(t, "process_cpu_seconds_total");
    double start = metric(t, "process_start_time_seconds");
    double fds = metric(t, "process_open_fds");
    double maxfds = metric(t, "process_max_fds");
    assert_true(rss > 1 << 20);         /* the test binary itself: > 1 MiB */
    assert_true(cpu >= 0 && cpu < 3600);
    double now = (double)time(NULL);    /* started within the last hour */
    assert_true(start <= now + 2 && start > now - 3600);
    assert_true(fds >= 3 && fds < 1000);
    assert_true(maxfds >= fds);
    rs_http_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_parse),
        cmocka_unit_test(test_stat_parse_bad),
        cmocka_unit_test(test_prometheus_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
