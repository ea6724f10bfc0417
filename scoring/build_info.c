/* build_info.c -- build information and process metrics (build_info.h).
 *
 * RS_VERSION_STRING, RS_BUILD_TYPE and RS_BUILD_COMPILER come from CMake
 * (compile definitions of this file only); RS_BUILD_COMMIT from
 * rs_build_commit.h, which a build step rewrites when the checkout's HEAD
 * or dirtiness changes (ops/cmake/build_commit.cmake), so `--version`
 * never names a stale commit after an incremental build. */
#define _GNU_SOURCE
#include "scoring/build_info.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cblas.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>

#include "rs_build_commit.h"

#ifndef RS_VERSION_STRING
#define RS_VERSION_STRING "unknown"
#endif
#ifndef RS_BUILD_TYPE
#define RS_BUILD_TYPE "unknown"
#endif
#ifndef RS_BUILD_COMPILER
#define RS_BUILD_COMPILER "unknown"
#endif

#define RS_STR2(x) #x
#define RS_STR(x) RS_STR2(x)

void rs_build_info_get(rs_build_info_t *bi) {
    memset(bi, 0, sizeof(*bi));
    bi->version = RS_VERSION_STRING;
    bi->commit = RS_BUILD_COMMIT;
    bi->build_type = RS_BUILD_TYPE[0] ? RS_BUILD_TYPE : "none";
    bi->compiler = RS_BUILD_COMPILER;
    rs_strlcpy(bi->rdkafka, rd_kafka_version_str(), sizeof(bi->rdkafka));
    rs_strlcpy(bi->hiredis,
               RS_STR(HIREDIS_MAJOR) "." RS_STR(HIREDIS_MINOR) "." RS_STR(
                   HIREDIS_PATCH),
               sizeof(bi->hiredis));
    const char *cfg = openblas_get_config();
    rs_strlcpy(bi->openblas_config, cfg ? cfg : "", sizeof(bi->openblas_config));
    /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." -> "0.3.21" */
    const char *v = cfg && !strncmp(cfg, "OpenBLAS ", 9) ? cfg + 9 : "unknown";
    size_t n = strcspn(v, " ");
    if (n >= sizeof(bi->openblas)) n = sizeof(bi->openblas) - 1;
    memcpy(bi->openblas, v, n);
    bi->openblas[n] = '\0';
    /* "OpenSSL 3.0.19 27 Jan 2026" -> "3.0.19" */
    const char *s = OpenSSL_version(OPENSSL_VERSION);
    s = s && !strncmp(s, "OpenSSL ", 8) ? s + 8 : (s ? s : "unknown");
    n = strcspn(s, " ");
    if (n >= sizeof(bi->openssl)) n = sizeof(bi->openssl) - 1;
    memcpy(bi->openssl, s, n);
    bi->openssl[n] = '\0';
}

void rs_build_info_print(FILE *fp) {
    rs_build_info_t bi;
    rs_build_info_get(&bi);
    fprintf(fp,
            "riskstream %s\n"
            "commit      %s\n"
            "build       %s, %s\n"
            "librdkafka  %s (headers %d.%d.%d)\n"
            "hiredis     %s\n"
            "OpenBLAS    %s\n"
            "OpenSSL     %s (Redis TLS)\n",
            bi.version, bi.commit, bi.build_type, bi.compiler, bi.rdkafka,
            (RD_KAFKA_VERSION >> 24) & 0xff, (RD_KAFKA_VERSION >> 16) & 0xff,
            (RD_KAFKA_VERSION >> 8) & 0xff, bi.hiredis, bi.openblas_config, bi.openssl);
}

/* A Prometheus label value: \ " and newline escaped. */
static void rs_prom_label(rs_http_buf_t *b, const char *name, const char *v,
                          int first) {
    rs_http_buf_printf(b, "%s%s=\"", first ? "" : ",", name);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') rs_http_buf_printf(b, "\\%c", *v);
        else if (*v == '\n') rs_http_buf_append(b, "\\n", 2);
        else rs_http_buf_append(b, v, 1);
    }
    rs_http_buf_append(b, "\"", 1);
}

int rs_proc_stat_parse(const char *text, long ticks, long page,
                       double boot_time_s, rs_proc_stat_t *out) {
    memset(out, 0, sizeof(*out));
    const char *p = text ? strrchr(text, ')') : NULL;
    if (!p || ticks <= 0 || page <= 0) return -1;
    p++;
    /* Fields after the name, 1-based as in proc(5): 3 state, ...,
     * 14 utime, 15 stime, 20 num_threads, 22 starttime, 23 vsize, 24 rss */
    unsigned long long f[25] = {0};
    int field = 3;
    while (*p && field <= 24) {
        while (*p == ' ') p++;
        if (!*p || *p == '\n') break;
        if (field == 3) { /* state: one letter */
            p++;
        } else {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p) return -1;
            f[field] = (unsigned long long)(v < 0 ? 0 : v);
            p = end;
        }
        if (*p && *p != ' ' && *p != '\n') return -1;
        field++;
    }
    if (field <= 24) return -1;
    out->cpu_seconds = (double)(f[14] + f[15]) / (double)ticks;
    out->threads = (long)f[20];
    out->start_time_s = boot_time_s + (double)f[22] / (double)ticks;
    out->vsize_bytes = (double)f[23];
    out->rss_bytes = (double)f[24] * (double)page;
    return 0;
}

/* Whole small file into buf (NUL-terminated); -1 on error. */
static int rs_read_small(const char *path, char *buf, size_t size) {
    FILE *fp = fopen(path, "re");
    if (!fp) return -1;
    size_t n = fread(buf, 1, size - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

static double rs_boot_time_s(void) {
    FILE *fp = fopen("/proc/stat", "re");
    if (!fp) return -1;
    char line[512];
    double bt = -1;
    while (fgets(line, sizeof(line), fp))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(fp);
    return bt;
}

static long rs_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void rs_prom_g(rs_http_buf_t *b, const char *name, const char *type,
                      const char *help, double v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help,
                       name, type, name, v);
}

void rs_build_info_prometheus(rs_http_buf_t *b) {
    rs_build_info_t bi;
    rs_build_info_get(&bi);
    rs_http_buf_printf(b, "# HELP riskstream_build_info version, commit, "
                          "build and library versions of this binary\n"
                          "# TYPE riskstream_build_info gauge\n"
                          "riskstream_build_info{");
    rs_prom_label(b, "version", bi.version, 1);
    rs_prom_label(b, "commit", bi.commit, 0);
    rs_prom_label(b, "build_type", bi.build_type, 0);
    rs_prom_label(b, "compiler", bi.compiler, 0);
    rs_prom_label(b, "librdkafka", bi.rdkafka, 0);
    rs_prom_label(b, "hiredis", bi.hiredis, 0);
    rs_prom_label(b, "openblas", bi.openblas, 0);
    rs_prom_label(b, "openssl", bi.openssl, 0);
    rs_http_buf_printf(b, "} 1\n");

    char stat[2048];
    rs_proc_stat_t ps;
    double bt = rs_boot_time_s();
    if (bt > 0 && rs_read_small("/proc/self/stat", stat, sizeof(stat)) == 0 &&
        rs_proc_stat_parse(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE),
                           bt, &ps) == 0) {
        rs_prom_g(b, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.",
                  ps.cpu_seconds);
        rs_prom_g(b, "process_resident_memory_bytes", "gauge",
                  "Resident memory size in bytes.", ps.rss_bytes);
        rs_prom_g(b, "process_virtual_memory_bytes", "gauge",
                  "Virtual memory size in bytes.", ps.vsize_bytes);
        rs_prom_g(b, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.",
                  ps.start_time_s);
        rs_prom_g(b, "riskstream_process_threads", "gauge",
                  "Threads of the process.", (double)ps.threads);
    }
    long fds = rs_open_fds();
    if (fds >= 0)
        rs_prom_g(b, "process_open_fds", "gauge",
                  "Number of open file descriptors.", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rs_prom_g(b, "process_max_fds", "gauge",
                  "Maximum number of open file descriptors.",
                  (double)rl.rlim_cur);
}
