/* build_info.h -- what this binary is (version, git commit, build type,
 * compiler, the versions of the libraries it runs on) and what the process
 * uses (CPU, memory, file descriptors), for `riskstream --version` and the
 * /metrics endpoint.
 *
 * The process metrics carry the standard Prometheus names (those of the
 * client libraries' process collector): process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_start_time_seconds, process_open_fds, process_max_fds.  They are
 * read from /proc at scrape time (Linux only; a value that cannot be read
 * is left out rather than reported as 0).
 *
 * The /proc parser does no I/O (rs_proc_stat_parse takes the text), so it
 * is unit-tested on fixed input.
 */
#ifndef RS_BUILD_INFO_H
#define RS_BUILD_INFO_H

#include <stdio.h>

#include "common/common.h"
#include "scoring/http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_build_info_s {
    const char *version;     /* "0.1.0" (CMake project version)            */
    const char *commit;      /* "d0d6be6c1a2b" (+"-dirty"), or "unknown"   */
    const char *build_type;  /* "RelWithDebInfo"                           */
    const char *compiler;    /* "GNU 12.2.0"                               */
    char rdkafka[32];        /* librdkafka at run time, "2.0.2"            */
    char hiredis[16];        /* hiredis at build time (0.14 has no runtime
                              * version call), "0.14.1"                    */
    char openblas[32];       /* "0.3.21"                                   */
    char openblas_config[128]; /* openblas_get_config(): "OpenBLAS 0.3.21
                              * DYNAMIC_ARCH NO_AFFINITY Haswell ..."      */
    char openssl[64];        /* OpenSSL at run time (Redis TLS)            */
} rs_build_info_t;

/* Fill `bi` (static strings and copies; nothing to free).  @locality any */
void rs_build_info_get(rs_build_info_t *bi);

/* The multi-line text of `riskstream --version`.  @locality any */
void rs_build_info_print(FILE *fp);

/* Append `riskstream_build_info{version=..,commit=..,...} 1` and the
 * process_* metrics in Prometheus text format.  @locality any thread */
void rs_build_info_prometheus(rs_http_buf_t *b);

/* Fields of /proc/<pid>/stat that the metrics use. */
typedef struct rs_proc_stat_s {
    double cpu_seconds;      /* utime + stime                              */
    double start_time_s;     /* since the epoch (needs boot_time_s)        */
    double rss_bytes;
    double vsize_bytes;
    long threads;
} rs_proc_stat_t;

/* Parse the text of /proc/<pid>/stat (the command name may hold spaces
 * and parentheses: fields are counted after its last ')').  `ticks` is
 * sysconf(_SC_CLK_TCK), `page` the page size, `boot_time_s` the btime
 * line of /proc/stat.  Pure.  0, or -1 if the text is malformed.
 * @locality any */
int rs_proc_stat_parse(const char *text, long ticks, long page,
                       double boot_time_s, rs_proc_stat_t *out);

#ifdef __cplusplus
}
#endif
#endif /* RS_BUILD_INFO_H */
