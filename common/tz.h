/* tz.h -- IANA time zones without setenv("TZ")/tzset(): the TZif file of a
 * zone is parsed once into a table of UTC offsets, and a lookup maps an
 * instant to its UTC offset (and the interval over which that offset holds,
 * so a caller can cache it).
 *
 * Design note
 * -----------
 * glibc's localtime_r() only knows the process-wide zone (the TZ variable),
 * so a library that needs "hour of day in Europe/Paris" while the process
 * runs in UTC would have to change global state.  Instead rs_tz_parse()
 * reads a TZif buffer (RFC 8536, versions 1-4; I/O-free, fuzzable) into
 * sorted transitions; the POSIX TZ footer of v2+ files (the rule after the
 * last transition, e.g. "CET-1CEST,M3.5.0,M10.5.0/3") is expanded into
 * explicit transitions up to the year 2200, so a lookup is a binary search
 * whatever the instant.  rs_tz_load() reads the file of a zone name from
 * $TZDIR or /usr/share/zoneinfo (Debian's tzdata).  "UTC" (and "", "Z",
 * "Etc/UTC", "GMT") needs no file.
 *
 * DST: an instant has exactly one offset, so local time is always defined;
 * in the spring-forward gap no instant maps to the skipped local hour, and
 * in the fall-back overlap two instants one hour apart map to the same
 * local hour.  Leap seconds are ignored (as POSIX time does).
 *
 * Ownership: rs_tz_parse/rs_tz_load return a handle freed by
 * rs_tz_destroy (NULL is a no-op).  A handle is immutable after creation:
 * any number of threads may call rs_tz_offset on it.
 */
#ifndef RS_TZ_H
#define RS_TZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_tz_s rs_tz_t;

/* Parse TZif bytes buf[0..len) as zone `name` (copied, for messages).
 * NULL with errstr set if the data is not a valid TZif file.  Cold path
 * (allocates). */
rs_tz_t *rs_tz_parse(const void *buf, size_t len, const char *name,
                     char *errstr, size_t errstr_size);

/* Zone `name` ("Europe/Paris", "UTC", ...): built-in UTC, or the TZif file
 * $TZDIR/name (default /usr/share/zoneinfo/name).  Names with ".." or a
 * leading '/' are refused.  NULL with errstr naming the zone and the
 * reason.  Cold path (reads a file). */
rs_tz_t *rs_tz_load(const char *name, char *errstr, size_t errstr_size);

void rs_tz_destroy(rs_tz_t *tz);

/* UTC offset in seconds (east positive) at the instant utc_ms.  *from_ms
 * and *until_ms (may be NULL) get the interval [from, until) around utc_ms
 * where the offset is the same (INT64_MIN / INT64_MAX when unbounded).
 * No allocation; O(log transitions). */
int32_t rs_tz_offset(const rs_tz_t *tz, int64_t utc_ms, int64_t *from_ms,
                     int64_t *until_ms);

/* The zone's name as given. */
const char *rs_tz_name(const rs_tz_t *tz);

#ifdef __cplusplus
}
#endif
#endif /* RS_TZ_H */
