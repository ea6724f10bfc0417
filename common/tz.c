/* tz.c -- TZif parsing and UTC-offset lookup (see tz.h). */
#include "common/tz.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define RS_TZ_MAX_TRANS 4096   /* file transitions kept (real zones: < 300) */
#define RS_TZ_LAST_YEAR 2200   /* footer rules expanded up to this year      */

struct rs_tz_s {
    char name[64];
    int n;               /* transitions */
    int64_t *at;         /* [n] UTC seconds of each transition, ascending */
    int32_t *off;        /* [n] offset from at[i] on */
    int32_t off0;        /* offset before at[0] (or always, if n == 0) */
};

/* ------------------------------------------------------------ helpers */

static uint32_t rs_tz_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t rs_tz_be64(const uint8_t *p) {
    return (int64_t)((uint64_t)rs_tz_be32(p) << 32 | rs_tz_be32(p + 4));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t rs_tz_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int rs_tz_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int rs_tz_mdays(int64_t y, int m) {
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && rs_tz_leap(y) ? 29 : md[m - 1];
}

/* Civil year of a day number. */
static int64_t rs_tz_year(int64_t days) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return y + (mp >= 10);
}

/* ------------------------------------------------- POSIX TZ footer */

typedef struct rs_tz_rule_s {
    int kind;            /* 'M', 'J' or 'n' */
    int m, w, d;         /* M: month, week (5 = last), weekday (0 Sunday) */
    int day;             /* J: 1..365 without Feb 29; n: 0..365 */
    int32_t secs;        /* local time of the change, seconds (may be < 0) */
} rs_tz_rule_t;

typedef struct rs_tz_posix_s {
    int32_t std_off, dst_off;   /* UTC offsets, east positive */
    int has_dst;
    rs_tz_rule_t start, end;
} rs_tz_posix_t;

static const char *rs_tz_pname(const char *p) {
    if (*p == '<') {
        while (*p && *p != '>') p++;
        return *p ? p + 1 : NULL;
    }
    const char *b = p;
    while (isalpha((unsigned char)*p)) p++;
    return p - b >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] -> seconds; NULL on error. */
static const char *rs_tz_ptime(const char *p, int32_t *out) {
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p)) return NULL;
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i) {
            if (*p != ':') break;
            p++;
        }
        if (!isdigit((unsigned char)*p)) return NULL;
        char *e;
        v[i] = strtol(p, &e, 10);
        if (v[i] > 167) return NULL;
        p = e;
    }
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    return p;
}

static const char *rs_tz_prule(const char *p, rs_tz_rule_t *r) {
    char *e;
    memset(r, 0, sizeof(*r));
    r->secs = 7200;
    if (*p == 'M') {
        r->kind = 'M';
        r->m = (int)strtol(p + 1, &e, 10);
        if (*e != '.') return NULL;
        r->w = (int)strtol(e + 1, &e, 10);
        if (*e != '.') return NULL;
        r->d = (int)strtol(e + 1, &e, 10);
        if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d < 0 ||
            r->d > 6)
            return NULL;
    } else if (*p == 'J') {
        r->kind = 'J';
        r->day = (int)strtol(p + 1, &e, 10);
        if (r->day < 1 || r->day > 365) return NULL;
    } else if (isdigit((unsigned char)*p)) {
        r->kind = 'n';
        r->day = (int)strtol(p, &e, 10);
        if (r->day < 0 || r->day > 365) return NULL;
    } else {
        return NULL;
    }
    p = e;
    if (*p == '/') p = rs_tz_ptime(p + 1, &r->secs);
    return p;
}

/* "STD off [DST [off] ,rule,rule]"; 0 ok. */
static int rs_tz_posix(const char *s, rs_tz_posix_t *z) {
    memset(z, 0, sizeof(*z));
    const char *p = rs_tz_pname(s);
    int32_t o;
    if (!p || !(p = rs_tz_ptime(p, &o))) return -1;
    z->std_off = -o;
    if (z->std_off < -26 * 3600 || z->std_off > 26 * 3600) return -1;
    if (!*p) return 0;
    if (!(p = rs_tz_pname(p))) return -1;
    z->has_dst = 1;
    z->dst_off = z->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = rs_tz_ptime(p, &o))) return -1;
        z->dst_off = -o;
    }
    if (*p != ',') return -1;  /* DST without rules: not in tzdata */
    if (!(p = rs_tz_prule(p + 1, &z->start)) || *p != ',') return -1;
    if (!(p = rs_tz_prule(p + 1, &z->end)) || *p) return -1;
    if (z->std_off < -26 * 3600 || z->std_off > 26 * 3600 ||
        z->dst_off < -26 * 3600 || z->dst_off > 26 * 3600)
        return -1;
    return 0;
}

/* UTC seconds of rule r in year y, the local clock running at `off`. */
static int64_t rs_tz_rule_at(const rs_tz_rule_t *r, int64_t y, int32_t off) {
    int64_t day;
    if (r->kind == 'M') {
        int64_t first = rs_tz_days(y, r->m, 1);
        int dow1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01: Thursday */
        int dom = 1 + (r->d - dow1 + 7) % 7 + (r->w - 1) * 7;
        while (dom > rs_tz_mdays(y, r->m)) dom -= 7;
        day = first + dom - 1;
    } else if (r->kind == 'J') {
        day = rs_tz_days(y, 1, 1) + r->day - 1 +
              (rs_tz_leap(y) && r->day >= 60);
    } else {
        day = rs_tz_days(y, 1, 1) + r->day;
    }
    return day * 86400 + r->secs - off;
}

/* ----------------------------------------------------------- parse */

static int rs_tz_push(rs_tz_t *tz, int *cap, int64_t at, int32_t off) {
    if (tz->n && at <= tz->at[tz->n - 1]) return 0;  /* keep ascending */
    if (tz->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        tz->at = rs_realloc(tz->at, (size_t)*cap * sizeof(*tz->at));
        tz->off = rs_realloc(tz->off, (size_t)*cap * sizeof(*tz->off));
    }
    tz->at[tz->n] = at;
    tz->off[tz->n] = off;
    tz->n++;
    return 1;
}

rs_tz_t *rs_tz_parse(const void *buf, size_t len, const char *name,
                     char *errstr, size_t errstr_size) {
    const uint8_t *b = buf, *end = b + len;
    rs_tz_t *tz = NULL;
    int cap = 0;
    const char *why = "not a TZif file";
    if (!buf || len < 44 || memcmp(b, "TZif", 4)) goto fail;
    int version = b[4] ? b[4] - '0' : 1;
    if (version < 1 || version > 9) goto fail;
    int tsz = 4;
    const uint8_t *h = b;
    for (int pass = 0; pass < 2; pass++) {
        if (end - h < 44 || memcmp(h, "TZif", 4)) { why = "bad header"; goto fail; }
        uint32_t isut = rs_tz_be32(h + 20), isstd = rs_tz_be32(h + 24),
                 leap = rs_tz_be32(h + 28), timecnt = rs_tz_be32(h + 32),
                 typecnt = rs_tz_be32(h + 36), charcnt = rs_tz_be32(h + 40);
        if (timecnt > RS_TZ_MAX_TRANS || typecnt < 1 || typecnt > 256 ||
            charcnt > 4096 || leap > 4096 || isut > 256 || isstd > 256) {
            why = "counts out of range";
            goto fail;
        }
        uint64_t need = (uint64_t)timecnt * (uint64_t)tsz + timecnt +
                        typecnt * 6ull + charcnt + leap * (uint64_t)(tsz + 4) +
                        isstd + isut;
        const uint8_t *d = h + 44;
        if ((uint64_t)(end - d) < need) { why = "truncated"; goto fail; }
        if (pass == 0 && version >= 2) {  /* skip the 32-bit block */
            h = d + need;
            tsz = 8;
            continue;
        }
        tz = rs_calloc(1, sizeof(*tz));
        rs_strlcpy(tz->name, name ? name : "", sizeof(tz->name));
        const uint8_t *tt = d, *idx = d + (size_t)timecnt * (size_t)tsz,
                      *types = idx + timecnt;
        for (uint32_t i = 0; i < typecnt; i++) {
            int32_t off = (int32_t)rs_tz_be32(types + 6 * (size_t)i);
            if (off < -26 * 3600 || off > 26 * 3600) { why = "bad offset"; goto fail; }
        }
        /* RFC 8536: type 0 applies before the first transition */
        tz->off0 = (int32_t)rs_tz_be32(types);
        for (uint32_t i = 0; i < timecnt; i++) {
            int64_t at = tsz == 8 ? rs_tz_be64(tt + 8 * (size_t)i)
                                  : (int32_t)rs_tz_be32(tt + 4 * (size_t)i);
            if (idx[i] >= typecnt) { why = "bad type index"; goto fail; }
            rs_tz_push(tz, &cap, at, (int32_t)rs_tz_be32(types + 6 * (size_t)idx[i]));
        }
        const uint8_t *foot = d + need;
        if (tsz == 8 && end - foot >= 2 && foot[0] == '\n') {
            const uint8_t *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
            char spec[128];
            size_t sl = nl ? (size_t)(nl - foot - 1) : 0;
            rs_tz_posix_t z;
            if (nl && sl && sl < sizeof(spec)) {
                memcpy(spec, foot + 1, sl);
                spec[sl] = '\0';
                if (rs_tz_posix(spec, &z) == 0) {
                    int64_t last = tz->n ? tz->at[tz->n - 1] : INT64_MIN;
                    if (!z.has_dst) {
                        if (!tz->n) tz->off0 = z.std_off;
                        else if (tz->off[tz->n - 1] != z.std_off &&
                                 last < INT64_MAX) /* no instant after it */
                            rs_tz_push(tz, &cap, last + 1, z.std_off);
                    } else {
                        int64_t y0 = tz->n ? rs_tz_year(last / 86400) : 1970;
                        if (y0 < 1800) y0 = 1800;  /* bounded expansion */
                        for (int64_t y = y0; y <= RS_TZ_LAST_YEAR; y++) {
                            int64_t s = rs_tz_rule_at(&z.start, y, z.std_off),
                                    e = rs_tz_rule_at(&z.end, y, z.dst_off);
                            int64_t a1 = s < e ? s : e, a2 = s < e ? e : s;
                            int32_t o1 = s < e ? z.dst_off : z.std_off,
                                    o2 = s < e ? z.std_off : z.dst_off;
                            if (a1 > last) rs_tz_push(tz, &cap, a1, o1);
                            if (a2 > last) rs_tz_push(tz, &cap, a2, o2);
                        }
                        if (!tz->n) tz->off0 = z.std_off;
                    }
                }
            }
        }
        return tz;
    }
fail:
    rs_tz_destroy(tz);
    rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "time zone '%s': %s",
            name ? name : "", why);
    return NULL;
}

rs_tz_t *rs_tz_load(const char *name, char *errstr, size_t errstr_size) {
    if (!name) name = "";
    if (!*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") ||
        !strcmp(name, "Z") || !strcmp(name, "GMT") || !strcmp(name, "Etc/GMT")) {
        rs_tz_t *tz = rs_calloc(1, sizeof(*tz));
        rs_strlcpy(tz->name, *name ? name : "UTC", sizeof(tz->name));
        return tz;
    }
    if (name[0] == '/' || strstr(name, "..") || strlen(name) > 200) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "time zone '%s': expected an IANA name such as Europe/Paris",
                name);
        return NULL;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
             name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "time zone '%s': cannot read %s: %s (is tzdata installed?)",
                name, path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = rs_malloc(1 << 20);
    size_t len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    rs_tz_t *tz = rs_tz_parse(buf, len, name, errstr, errstr_size);
    rs_free(buf);
    return tz;
}

void rs_tz_destroy(rs_tz_t *tz) {
    if (!tz) return;
    rs_free(tz->at);
    rs_free(tz->off);
    rs_free(tz);
}

const char *rs_tz_name(const rs_tz_t *tz) { return tz->name; }

int32_t rs_tz_offset(const rs_tz_t *tz, int64_t utc_ms, int64_t *from_ms,
                     int64_t *until_ms) {
    int64_t s = utc_ms >= 0 ? utc_ms / 1000 : -((-utc_ms + 999) / 1000);
    /* last transition <= s */
    int lo = 0, hi = tz->n;  /* answer in [-1, n-1]: count of at[] <= s */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= s) lo = mid + 1;
        else hi = mid;
    }
    int i = lo - 1;
    /* clamp the bounds so the ms products cannot overflow */
    const int64_t lim = INT64_MAX / 1000 - 1;
    if (from_ms)
        *from_ms = i < 0 || tz->at[i] < -lim ? INT64_MIN : tz->at[i] * 1000;
    if (until_ms)
        *until_ms = lo >= tz->n || tz->at[lo] > lim ? INT64_MAX
                                                    : tz->at[lo] * 1000;
    return i < 0 ? tz->off0 : tz->off[i];
}
