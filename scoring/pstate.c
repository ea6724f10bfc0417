/* pstate.c -- partition-local state stores (pstate.h).
 *
 * Invariants
 * - A partition's state is loaded whole or not at all: every load drops
 *   the partition first and drops it again on any error.
 * - A partition checkpoint names exactly the state it holds: it is built
 *   in one pass on the owner thread between batches (nothing changes the
 *   state meanwhile) and committed by rename.
 */
#define _GNU_SOURCE
#include "scoring/pstate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_PSTATE_MAGIC "RSPSTAT1"
#define RS_PSTATE_FORMAT 2u

/* Format 2 (written): format 1's header with the maintenance section's
 * length before the checksums. */
typedef struct rs_pstate_hdr_s {
    char magic[8];
    uint32_t format;
    int32_t partition;
    int64_t events, labels;
    uint64_t log_end;
    int64_t changelog;
    uint64_t feat_len, caches_len, dedup_len;
    uint64_t maint_len;  /* format 2 */
    uint64_t body_hash;
    uint64_t hdr_hash;   /* rs_hash64 of every byte before it */
} rs_pstate_hdr_t;

/* Format 1 (still read). */
typedef struct rs_pstate_hdr1_s {
    char magic[8];
    uint32_t format;
    int32_t partition;
    int64_t events, labels;
    uint64_t log_end;
    int64_t changelog;
    uint64_t feat_len, caches_len, dedup_len;
    uint64_t body_hash;
    uint64_t hdr_hash;
} rs_pstate_hdr1_t;

_Static_assert(sizeof(rs_pstate_hdr_t) == RS_PSTATE_FILE_HDR,
               "partition checkpoint header");
_Static_assert(sizeof(rs_pstate_hdr1_t) == RS_PSTATE_FILE_HDR_V1,
               "partition checkpoint header, format 1");

struct rs_pstate_s {
    char dir[600];
    rs_features_t *feat;
    rs_model_t *model;
    rs_dedup_t *dedup;
    rs_alerts_t *al;     /* maintenance machines (NULL: none) */
    uint8_t *buf;        /* [cap] file image being built or read */
    size_t cap;
    pthread_mutex_t lock; /* st */
    rs_pstate_stats_t st;
};

/* ------------------------------------------------------------ codec */

void rs_pstate_file_seal(void *buf, int32_t partition,
                         const rs_pstate_pos_t *pos, size_t feat_len,
                         size_t caches_len, size_t dedup_len,
                         size_t maint_len) {
    rs_pstate_hdr_t h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, RS_PSTATE_MAGIC, 8);
    h.format = RS_PSTATE_FORMAT;
    h.partition = partition;
    h.events = pos->events;
    h.labels = pos->labels;
    h.log_end = pos->log_end;
    h.changelog = pos->changelog;
    h.feat_len = feat_len;
    h.caches_len = caches_len;
    h.dedup_len = dedup_len;
    h.maint_len = maint_len;
    h.body_hash = rs_hash64((const uint8_t *)buf + sizeof(h),
                            feat_len + caches_len + dedup_len + maint_len);
    h.hdr_hash = rs_hash64(&h, offsetof(rs_pstate_hdr_t, hdr_hash));
    memcpy(buf, &h, sizeof(h));
}

/* The header alone: checked, *h filled (format 1 as format 2 without a
 * maintenance section), *hlen its size in the file. */
static rs_err_t rs_pstate_hdr_parse(const void *buf, size_t len,
                                    rs_pstate_hdr_t *h, size_t *hlen,
                                    char *errstr, size_t errstr_size) {
    uint32_t format = 0;
    if (buf && len >= 12) memcpy(&format, (const char *)buf + 8, 4);
    size_t need = format == 1 ? sizeof(rs_pstate_hdr1_t) : sizeof(*h);
    if (!buf || len < need)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint: %zu bytes, shorter than its "
                       "header (%zu)", len, need);
    if (memcmp(buf, RS_PSTATE_MAGIC, 8))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint: bad magic");
    if (format == 1) {
        rs_pstate_hdr1_t h1;
        memcpy(&h1, buf, sizeof(h1));
        if (h1.hdr_hash != rs_hash64(&h1, offsetof(rs_pstate_hdr1_t,
                                                   hdr_hash)))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "partition checkpoint: header checksum mismatch");
        memset(h, 0, sizeof(*h));
        memcpy(h, &h1, offsetof(rs_pstate_hdr1_t, body_hash));
        h->maint_len = 0;
        h->body_hash = h1.body_hash;
        h->hdr_hash = h1.hdr_hash;
    } else {
        memcpy(h, buf, sizeof(*h));
        if (h->format == RS_PSTATE_FORMAT &&
            h->hdr_hash != rs_hash64(h, offsetof(rs_pstate_hdr_t, hdr_hash)))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "partition checkpoint: header checksum mismatch");
        if (h->format != RS_PSTATE_FORMAT)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "partition checkpoint: format %u, this build "
                           "reads 1 and %u", h->format, RS_PSTATE_FORMAT);
    }
    *hlen = need;
    if (h->partition < 0 || h->partition > 65533 || h->events < -1 ||
        h->labels < -1 || h->changelog < -1 ||
        h->log_end > (UINT64_C(1) << 48))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint: partition %d or its offsets "
                       "(%lld, %lld, log %llu, changelog %lld) out of range",
                       (int)h->partition, (long long)h->events,
                       (long long)h->labels, (unsigned long long)h->log_end,
                       (long long)h->changelog);
    return RS_OK;
}

rs_err_t rs_pstate_file_parse(const void *buf, size_t len,
                              rs_pstate_file_t *out, char *errstr,
                              size_t errstr_size) {
    rs_pstate_hdr_t h;
    size_t hl = 0;
    memset(out, 0, sizeof(*out));
    rs_err_t err = rs_pstate_hdr_parse(buf, len, &h, &hl, errstr,
                                       errstr_size);
    if (err) return err;
    size_t body = len - hl;
    if (h.feat_len > body || h.caches_len > body - h.feat_len ||
        h.dedup_len > body - h.feat_len - h.caches_len ||
        h.maint_len != body - h.feat_len - h.caches_len - h.dedup_len)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint of partition %d: sections of "
                       "%llu + %llu + %llu + %llu bytes do not make its "
                       "%zu-byte body (truncated?)", (int)h.partition,
                       (unsigned long long)h.feat_len,
                       (unsigned long long)h.caches_len,
                       (unsigned long long)h.dedup_len,
                       (unsigned long long)h.maint_len, body);
    const uint8_t *b = (const uint8_t *)buf + hl;
    if (rs_hash64(b, body) != h.body_hash)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint of partition %d: body "
                       "checksum mismatch", (int)h.partition);
    out->partition = h.partition;
    out->format = (int)h.format;
    out->pos = (rs_pstate_pos_t){h.events, h.labels, h.log_end, h.changelog};
    out->feat = b;
    out->feat_len = (size_t)h.feat_len;
    out->caches = b + h.feat_len;
    out->caches_len = (size_t)h.caches_len;
    out->dedup = b + h.feat_len + h.caches_len;
    out->dedup_len = (size_t)h.dedup_len;
    out->maint = out->dedup + h.dedup_len;
    out->maint_len = (size_t)h.maint_len;
    return RS_OK;
}

/* -------------------------------------------------- changelog records */

static void rs_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void rs_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t rs_get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t rs_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

void rs_pstate_key_encode(void *key, char store, int32_t partition,
                          uint64_t id) {
    uint8_t *k = key;
    k[0] = 'R';
    k[1] = 'S';
    k[2] = (uint8_t)store;
    k[3] = 1;
    rs_le32(k + 4, (uint32_t)partition);
    rs_le64(k + 8, id);
}

rs_err_t rs_pstate_key_parse(const void *key, size_t len, rs_pstate_key_t *k,
                             char *errstr, size_t errstr_size) {
    const uint8_t *b = key;
    if (!b || len != RS_PSTATE_KEY_LEN || b[0] != 'R' || b[1] != 'S' ||
        b[3] != 1)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog: a key of %zu bytes that is not a state "
                       "record's", len);
    k->store = (char)b[2];
    k->partition = (int32_t)rs_get32(b + 4);
    k->id = rs_get64(b + 8);
    if (!strchr("FSIDMA", k->store) || !k->store || k->partition < 0 ||
        k->partition > 65533 || (k->store == 'M') != (k->id == 0))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog: key of store '%c', partition %d, id %llx "
                       "is not valid", b[2] >= 32 && b[2] < 127 ? b[2] : '?',
                       (int)k->partition, (unsigned long long)k->id);
    return RS_OK;
}

void rs_pstate_mark_encode(void *val, const rs_pstate_pos_t *pos) {
    uint8_t *v = val;
    memcpy(v, "RSMK", 4);
    rs_le32(v + 4, 1);
    rs_le64(v + 8, (uint64_t)pos->events);
    rs_le64(v + 16, (uint64_t)pos->labels);
    rs_le64(v + 24, pos->log_end);
}

rs_err_t rs_pstate_mark_parse(const void *val, size_t len,
                              rs_pstate_pos_t *pos, char *errstr,
                              size_t errstr_size) {
    const uint8_t *v = val;
    if (!v || len != RS_PSTATE_MARK_LEN || memcmp(v, "RSMK", 4) ||
        rs_get32(v + 4) != 1)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog: a marker of %zu bytes that is not one",
                       len);
    pos->events = (int64_t)rs_get64(v + 8);
    pos->labels = (int64_t)rs_get64(v + 16);
    pos->log_end = rs_get64(v + 24);
    pos->changelog = -1;
    if (pos->events < -1 || pos->labels < -1 ||
        pos->log_end > (UINT64_C(1) << 48))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog: marker offsets out of range (%lld, %lld, "
                       "log %llu)", (long long)pos->events,
                       (long long)pos->labels,
                       (unsigned long long)pos->log_end);
    return RS_OK;
}

/* ------------------------------------------------------------ stores */

static int rs_pstate_mkdir(const char *path) {
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

rs_pstate_t *rs_pstate_new(const char *dir, rs_features_t *feat,
                           rs_model_t *model, rs_dedup_t *dedup,
                           char *errstr, size_t errstr_size) {
    if (!dir || !dir[0] || strlen(dir) >= 512 || !feat || !model) {
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "partition state: bad arguments");
        return NULL;
    }
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "partition state: %s is not a directory", dir);
        return NULL;
    }
    rs_pstate_t *ps = rs_calloc(1, sizeof(*ps));
    rs_strlcpy(ps->dir, dir, sizeof(ps->dir));
    ps->feat = feat;
    ps->model = model;
    ps->dedup = dedup;
    pthread_mutex_init(&ps->lock, NULL);
    return ps;
}

void rs_pstate_set_alerts(rs_pstate_t *ps, rs_alerts_t *al) { ps->al = al; }

rs_alerts_t *rs_pstate_alerts(const rs_pstate_t *ps) { return ps->al; }

void rs_pstate_destroy(rs_pstate_t *ps) {
    if (!ps) return;
    free(ps->buf);
    pthread_mutex_destroy(&ps->lock);
    free(ps);
}

static void rs_pstate_path(const rs_pstate_t *ps, int32_t p, const char *name,
                           char *buf, size_t size) {
    if (name)
        snprintf(buf, size, "%s/p%d/%s", ps->dir, (int)p, name);
    else
        snprintf(buf, size, "%s/p%d", ps->dir, (int)p);
}

static void rs_pstate_reserve(rs_pstate_t *ps, size_t need) {
    if (need <= ps->cap) return;
    free(ps->buf);
    ps->cap = need + need / 4;
    ps->buf = rs_malloc(ps->cap);
}

static int rs_pstate_sel_part(void *opaque, uint64_t key, int32_t partition) {
    (void)key;
    return partition == *(const int32_t *)opaque;
}

static int rs_write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

rs_err_t rs_pstate_save(rs_pstate_t *ps, int32_t partition,
                        const rs_pstate_pos_t *pos, char *errstr,
                        size_t errstr_size) {
    char path[700], tmp[720], dir[680];
    size_t flen = 0, clen, dlen = 0;
    rs_features_part_write(ps->feat, partition, NULL, 0, &flen, NULL);
    clen = rs_model_caches_size_sel(ps->model, rs_pstate_sel_part, &partition);
    if (ps->dedup) dlen = rs_dedup_size_part(ps->dedup, partition);
    size_t mlen = ps->al ? rs_alerts_part_write(ps->al, partition, NULL, 0)
                         : 0;
    rs_pstate_reserve(ps, RS_PSTATE_FILE_HDR + flen + clen + dlen + mlen);
    uint8_t *b = ps->buf + RS_PSTATE_FILE_HDR;
    size_t got = 0;
    if (rs_features_part_write(ps->feat, partition, b, flen, &got, NULL) ||
        got != flen)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "partition %d: feature state changed while saved",
                       (int)partition);
    if (rs_model_caches_write_sel(ps->model, rs_pstate_sel_part, &partition,
                                  b + flen, clen, &got) ||
        got != clen)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "partition %d: entity caches changed while saved",
                       (int)partition);
    if (ps->dedup &&
        (rs_dedup_write_part(ps->dedup, partition, b + flen + clen, dlen,
                             &got) ||
         got != dlen))
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "partition %d: duplicate window changed while saved",
                       (int)partition);
    if (ps->al &&
        rs_alerts_part_write(ps->al, partition, b + flen + clen + dlen,
                             mlen) != mlen)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "partition %d: maintenance machines changed while "
                       "saved", (int)partition);
    rs_pstate_file_seal(ps->buf, partition, pos, flen, clen, dlen, mlen);
    rs_pstate_path(ps, partition, NULL, dir, sizeof(dir));
    rs_pstate_path(ps, partition, "checkpoint", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (rs_pstate_mkdir(dir))
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "cannot create %s: %s",
                       dir, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "cannot create %s: %s",
                       tmp, strerror(errno));
    const char *what = NULL;
    if (rs_write_all(fd, ps->buf,
                     RS_PSTATE_FILE_HDR + flen + clen + dlen + mlen))
        what = "write";
    else if (fsync(fd))
        what = "fsync";
    int e = errno;
    if (close(fd) && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(tmp, path)) {
        what = "rename";
        e = errno;
    }
    if (what) {
        unlink(tmp);
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "%s %s: %s", what, tmp,
                       strerror(e));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    pthread_mutex_lock(&ps->lock);
    ps->st.saves++;
    pthread_mutex_unlock(&ps->lock);
    return RS_OK;
}

/* The file of `partition` into ps->buf: *len its size.  RS_ERR_NOTFOUND
 * if there is none.  hdr_only: the header alone. */
static rs_err_t rs_pstate_read_file(rs_pstate_t *ps, int32_t partition,
                                    int hdr_only, size_t *len, char *errstr,
                                    size_t errstr_size) {
    char path[700];
    rs_pstate_path(ps, partition, "checkpoint", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return RS_ERR_NOTFOUND;
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "cannot open %s: %s",
                       path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        close(fd);
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "stat %s: %s", path,
                       strerror(e));
    }
    size_t size = hdr_only ? RS_MIN((size_t)sb.st_size, RS_PSTATE_FILE_HDR)
                           : (size_t)sb.st_size;
    rs_pstate_reserve(ps, size ? size : 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, ps->buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    if (got < size)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "short read of %s",
                       path);
    return RS_OK;
}

rs_err_t rs_pstate_peek(rs_pstate_t *ps, int32_t partition,
                        rs_pstate_pos_t *pos, char *errstr,
                        size_t errstr_size) {
    size_t len = 0;
    rs_err_t err = rs_pstate_read_file(ps, partition, 1, &len, errstr,
                                       errstr_size);
    if (err) return err;
    rs_pstate_hdr_t h;
    size_t hl = 0;
    err = rs_pstate_hdr_parse(ps->buf, len, &h, &hl, errstr, errstr_size);
    if (err) return err;
    if (h.partition != partition)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint p%d holds partition %d",
                       (int)partition, (int)h.partition);
    *pos = (rs_pstate_pos_t){h.events, h.labels, h.log_end, h.changelog};
    return RS_OK;
}

void rs_pstate_drop(rs_pstate_t *ps, int32_t partition, uint64_t *nkeys) {
    rs_features_part_drop(ps->feat, partition, nkeys);
    rs_model_caches_drop(ps->model, rs_pstate_sel_part, &partition);
    if (ps->dedup) rs_dedup_drop_part(ps->dedup, partition);
    if (ps->al) rs_alerts_part_drop(ps->al, partition, NULL);
    pthread_mutex_lock(&ps->lock);
    ps->st.drops++;
    pthread_mutex_unlock(&ps->lock);
}

rs_err_t rs_pstate_load(rs_pstate_t *ps, int32_t partition,
                        rs_pstate_pos_t *pos, uint64_t *nkeys, char *errstr,
                        size_t errstr_size) {
    size_t len = 0;
    char e2[300];
    if (nkeys) *nkeys = 0;
    rs_err_t err = rs_pstate_read_file(ps, partition, 0, &len, errstr,
                                       errstr_size);
    if (err) return err;
    rs_pstate_file_t pf;
    err = rs_pstate_file_parse(ps->buf, len, &pf, errstr, errstr_size);
    if (err) return err;
    if (pf.partition != partition)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "partition checkpoint p%d holds partition %d",
                       (int)partition, (int)pf.partition);
    rs_features_part_drop(ps->feat, partition, NULL);
    rs_model_caches_drop(ps->model, rs_pstate_sel_part, &partition);
    if (ps->dedup) rs_dedup_drop_part(ps->dedup, partition);
    if (ps->al) rs_alerts_part_drop(ps->al, partition, NULL);
    uint64_t nk = 0, n2 = 0;
    err = rs_features_part_read(ps->feat, partition, pf.feat, pf.feat_len,
                                &nk, e2, sizeof(e2));
    if (!err && pf.caches_len)
        err = rs_model_caches_merge(ps->model, pf.caches, pf.caches_len, &n2,
                                    e2, sizeof(e2));
    if (!err && ps->dedup && pf.dedup_len)
        err = rs_dedup_merge(ps->dedup, pf.dedup, pf.dedup_len, &n2, e2,
                             sizeof(e2));
    if (err) {
        rs_features_part_drop(ps->feat, partition, NULL);
        rs_model_caches_drop(ps->model, rs_pstate_sel_part, &partition);
        if (ps->dedup) rs_dedup_drop_part(ps->dedup, partition);
        return rs_errf(errstr, errstr_size, err,
                       "partition checkpoint of partition %d: %s",
                       (int)partition, e2);
    }
    /* The maintenance machines (format 2): a damaged or newer section is
     * refused by name and the rest of the checkpoint used -- those
     * machines start afresh here, as before this section existed. */
    if (ps->al && pf.maint_len &&
        rs_alerts_part_merge(ps->al, partition, pf.maint, pf.maint_len,
                             &n2, e2, sizeof(e2)) != RS_OK) {
        rs_alerts_part_drop(ps->al, partition, NULL);
        rs_warn("state", "partition checkpoint of partition %d: its "
                "maintenance machines not used (%s); the rest is", (int)partition,
                e2);
    }
    *pos = pf.pos;
    if (nkeys) *nkeys = nk;
    return RS_OK;
}

void rs_pstate_restore_begin(rs_pstate_t *ps) {
    pthread_mutex_lock(&ps->lock);
    ps->st.restoring++;
    pthread_mutex_unlock(&ps->lock);
}

void rs_pstate_restore_end(rs_pstate_t *ps, char source, uint64_t keys,
                           double seconds) {
    pthread_mutex_lock(&ps->lock);
    if (ps->st.restoring > 0) ps->st.restoring--;
    if (source != 'm') {
        ps->st.restores++;
        if (source == 'l') ps->st.from_local++;
        else if (source == 'c') ps->st.from_changelog++;
        else if (source == 's') ps->st.from_standby++;
        else ps->st.from_replay++;
    }
    ps->st.keys_restored += keys;
    ps->st.last_restore_s = seconds;
    ps->st.restore_s_total += seconds;
    pthread_mutex_unlock(&ps->lock);
}

void rs_pstate_stats(const rs_pstate_t *ps, rs_pstate_stats_t *st) {
    rs_pstate_t *m = (rs_pstate_t *)ps;
    pthread_mutex_lock(&m->lock);
    *st = ps->st;
    pthread_mutex_unlock(&m->lock);
}

rs_err_t rs_pstate_apply(rs_pstate_t *ps, int32_t partition, const void *key,
                         size_t klen, const void *val, size_t vlen,
                         rs_pstate_pos_t *mark, int *is_mark, char *errstr,
                         size_t errstr_size) {
    rs_pstate_key_t k;
    char e2[300];
    uint64_t n = 0;
    *is_mark = 0;
    rs_err_t err = rs_pstate_key_parse(key, klen, &k, errstr, errstr_size);
    if (err) return err;
    if (k.partition != partition)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog: a record of partition %d in partition %d",
                       (int)k.partition, (int)partition);
    if (k.store == 'M') {
        err = rs_pstate_mark_parse(val, vlen, mark, errstr, errstr_size);
        if (!err) *is_mark = 1;
        return err;
    }
    if (!vlen) {
        /* A tombstone.  An entity that expired or was evicted (issue 13)
         * is forgotten here too, so a restore from a log not yet compacted
         * does not bring it back; index and duplicate entries that left
         * are compaction's business (they leave again by themselves). */
        if (k.store == 'F') rs_features_entity_drop(ps->feat, partition, k.id);
        else if (k.store == 'S')
            rs_model_caches_drop_key(ps->model, partition, k.id);
        /* a machine forgotten as idle (alerts.h "Idle machines") */
        else if (k.store == 'A' && ps->al)
            rs_alerts_machine_drop(ps->al, partition, k.id);
        return RS_OK;
    }
    switch (k.store) {
    case 'F':
    case 'I':
        err = rs_features_part_read(ps->feat, partition, val, vlen, &n, e2,
                                    sizeof(e2));
        break;
    case 'S':
        err = rs_model_caches_merge(ps->model, val, vlen, &n, e2, sizeof(e2));
        break;
    case 'A':
        /* a machine's maintenance state; without maintenance here, or
         * damaged: refused by name, the other records used (the machine
         * starts afresh, as before these records existed) */
        if (ps->al &&
            rs_alerts_part_merge(ps->al, partition, val, vlen, &n, e2,
                                 sizeof(e2)) != RS_OK)
            rs_warn("state", "changelog record 'A' %016llx of partition %d "
                    "not used: %s", (unsigned long long)k.id, (int)partition,
                    e2);
        err = RS_OK;
        break;
    default: /* 'D' */
        err = ps->dedup ? rs_dedup_merge(ps->dedup, val, vlen, &n, e2,
                                         sizeof(e2))
                        : RS_OK;
        break;
    }
    if (err)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog record '%c' %016llx of partition %d: %s",
                       k.store, (unsigned long long)k.id, (int)partition, e2);
    return RS_OK;
}
