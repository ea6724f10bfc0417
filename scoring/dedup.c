/* dedup.c -- duplicate event ids (see dedup.h for the design note).
 *
 * Layout: entries in a ring in arrival order (absolute positions
 * [tail, head), slot = position % cap), an open-addressing index from the
 * key to the slot (common/idx.h), and the model versions interned in a
 * small reference-counted table so that an entry is 32 bytes.
 *
 * Invariants
 * - Every live entry is in the index exactly once; keys are unique.
 * - vrefs[v] counts the live entries with a decision whose version is v;
 *   a version slot with no reference is free.
 * - An entry leaves only from the tail: expiry (older than newest -
 *   window) or eviction (table full, or every version slot taken).
 */
#include <stdlib.h>
#include <string.h>

#include "common/idx.h"
#include "scoring/dedup.h"

#define RS_DD_VERSIONS 4096     /* distinct model versions among live
                                 * entries (published at most every
                                 * publish_every updates)               */
#define RS_DD_MAGIC 0x44445352u /* "RSDD" */
#define RS_DD_FILE_VERSION 1u

typedef struct rs_dd_ent_s {
    uint64_t key;
    int64_t t;          /* event time                                   */
    float score;
    uint32_t flags;
    uint8_t decision, has;
    uint16_t ver;       /* version slot (has == 1)                      */
    uint32_t part;      /* input partition + 1 (0: unknown)             */
} rs_dd_ent_t;          /* 32 bytes */

struct rs_dedup_s {
    uint64_t cap;
    int64_t window_ms;
    rs_dd_ent_t *ring;            /* [cap]                               */
    uint64_t head, tail;          /* live: absolute positions [tail, head) */
    uint32_t *idx;                /* [mask + 1] slot + 1, 0 = empty      */
    uint32_t mask;
    int64_t newest;               /* newest event time inserted          */
    char (*ver)[RS_VERSION_MAX];  /* [RS_DD_VERSIONS]                    */
    uint32_t *vrefs;              /* [RS_DD_VERSIONS]                    */
    uint32_t vlast;               /* last interned slot (fast path)      */
    uint64_t inserts, hits, expired, evictions;
    uint64_t *gone_key;           /* [gone_cap] entries expired or evicted
                                   * since the last take (changelog)     */
    int32_t *gone_part;
    uint32_t ngone, gone_cap;
};

/* File: header, then n_ver version strings, then n entries (oldest
 * first) with `ver` renumbered into the written strings.  Host order. */
typedef struct rs_dd_file_s {
    uint32_t magic, version;
    uint64_t n, n_ver;
    int64_t window_ms;
} rs_dd_file_t;

static uint64_t rs_dd_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

uint64_t rs_dedup_bytes(uint64_t max) {
    return sizeof(struct rs_dedup_s) + max * sizeof(rs_dd_ent_t) +
           rs_dd_pow2(2 * max) * sizeof(uint32_t) +
           (uint64_t)RS_DD_VERSIONS * (RS_VERSION_MAX + sizeof(uint32_t));
}

static uint64_t rs_dd_key_of(const void *ctx, uint32_t slot) {
    const rs_dedup_t *d = ctx;
    return d->ring[slot].key;
}

static void rs_dd_clear(rs_dedup_t *d) {
    memset(d->idx, 0, ((size_t)d->mask + 1) * sizeof(uint32_t));
    memset(d->vrefs, 0, RS_DD_VERSIONS * sizeof(uint32_t));
    d->head = d->tail = 0;
    d->newest = INT64_MIN;
    d->vlast = 0;
}

rs_dedup_t *rs_dedup_new(uint64_t max, int64_t window_ms, char *errstr,
                         size_t errstr_size) {
    if (max < 1 || max > (1u << 30) || window_ms <= 0) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "dedup: %llu entries and a window of %lld ms: need 1..2^30 "
                "entries and a window > 0", (unsigned long long)max,
                (long long)window_ms);
        return NULL;
    }
    rs_dedup_t *d = rs_calloc(1, sizeof(*d));
    d->cap = max;
    d->window_ms = window_ms;
    d->ring = rs_aligned_calloc((size_t)max, sizeof(rs_dd_ent_t));
    d->mask = (uint32_t)(rs_dd_pow2(2 * max) - 1);
    d->idx = rs_aligned_calloc((size_t)d->mask + 1, sizeof(uint32_t));
    d->ver = rs_calloc(RS_DD_VERSIONS, RS_VERSION_MAX);
    d->vrefs = rs_calloc(RS_DD_VERSIONS, sizeof(uint32_t));
    rs_dd_clear(d);
    return d;
}

void rs_dedup_destroy(rs_dedup_t *d) {
    if (!d) return;
    rs_free(d->ring);
    rs_free(d->idx);
    free(d->ver);
    free(d->vrefs);
    free(d->gone_key);
    free(d->gone_part);
    free(d);
}

uint64_t rs_dedup_key(const char *entity_id, const char *event_id) {
    return rs_hash64_seed(event_id, strlen(event_id),
                          rs_hash_str(entity_id));
}

/* Drop the tail entry (expired or evicted). */
static void rs_dd_pop_tail(rs_dedup_t *d) {
    uint32_t slot = (uint32_t)(d->tail % d->cap);
    rs_dd_ent_t *e = &d->ring[slot];
    if (d->gone_cap && d->ngone < d->gone_cap) {
        d->gone_key[d->ngone] = e->key;
        d->gone_part[d->ngone++] = (int32_t)e->part - 1;
    }
    int64_t pos = rs_idx_pos(d->idx, d->mask, e->key, rs_dd_key_of, d);
    if (pos >= 0)
        rs_idx_unindex(d->idx, d->mask, (uint32_t)pos, rs_dd_key_of, d);
    if (e->has && d->vrefs[e->ver]) d->vrefs[e->ver]--;
    d->tail++;
}

void rs_dedup_prefetch(const rs_dedup_t *d, uint64_t key) {
    __builtin_prefetch(&d->idx[(uint32_t)key & d->mask]);
}

int rs_dedup_check(rs_dedup_t *d, uint64_t key, int64_t event_time_ms,
                   uint64_t *h) {
    return rs_dedup_check_part(d, key, event_time_ms, -1, h);
}

int rs_dedup_check_part(rs_dedup_t *d, uint64_t key, int64_t event_time_ms,
                        int32_t partition, uint64_t *h) {
    if (event_time_ms > d->newest) d->newest = event_time_ms;
    /* Expire what fell out of the window (oldest arrivals first). */
    while (d->tail < d->head &&
           d->ring[d->tail % d->cap].t < d->newest - d->window_ms) {
        rs_dd_pop_tail(d);
        d->expired++;
    }
    int64_t pos = rs_idx_pos(d->idx, d->mask, key, rs_dd_key_of, d);
    if (pos >= 0) {
        uint64_t slot = d->idx[pos] - 1, tslot = d->tail % d->cap;
        *h = d->tail + (slot + d->cap - tslot) % d->cap;
        d->hits++;
        return 1;
    }
    if (d->head - d->tail == d->cap) {
        rs_dd_pop_tail(d);
        d->evictions++;
    }
    uint32_t slot = (uint32_t)(d->head % d->cap);
    d->ring[slot] = (rs_dd_ent_t){
        .key = key, .t = event_time_ms,
        .part = partition >= 0 ? (uint32_t)partition + 1 : 0};
    rs_idx_insert(d->idx, d->mask, key, slot);
    *h = d->head++;
    d->inserts++;
    return 0;
}

/* The version slot of `v`, interning it; -1 if every slot is referenced. */
static int rs_dd_intern(rs_dedup_t *d, const char *v) {
    if (d->vrefs[d->vlast] && !strncmp(d->ver[d->vlast], v, RS_VERSION_MAX))
        return (int)d->vlast;
    int free_slot = -1;
    for (int i = 0; i < RS_DD_VERSIONS; i++) {
        if (!d->vrefs[i]) {
            if (free_slot < 0) free_slot = i;
            continue;
        }
        if (!strncmp(d->ver[i], v, RS_VERSION_MAX)) {
            d->vlast = (uint32_t)i;
            return i;
        }
    }
    if (free_slot >= 0) {
        rs_strlcpy(d->ver[free_slot], v, RS_VERSION_MAX);
        d->vlast = (uint32_t)free_slot;
    }
    return free_slot;
}

void rs_dedup_set(rs_dedup_t *d, uint64_t h, const rs_dedup_rec_t *rec) {
    if (h < d->tail || h >= d->head) return;
    int v;
    /* Every version slot referenced (thousands of versions inside the
     * window): the oldest entries go first, as for a full table. */
    while ((v = rs_dd_intern(d, rec->model_version)) < 0 && d->tail < h) {
        rs_dd_pop_tail(d);
        d->evictions++;
    }
    if (v < 0 || h < d->tail) return;
    rs_dd_ent_t *e = &d->ring[h % d->cap];
    if (e->has && d->vrefs[e->ver]) d->vrefs[e->ver]--;
    e->score = rec->score;
    e->flags = rec->flags;
    e->decision = rec->decision;
    e->ver = (uint16_t)v;
    e->has = 1;
    d->vrefs[v]++;
}

static void rs_dd_rec_of(const rs_dedup_t *d, const rs_dd_ent_t *e,
                         rs_dedup_rec_t *out) {
    memset(out, 0, sizeof(*out));
    if (!e->has) return;
    out->score = e->score;
    out->flags = e->flags;
    out->decision = e->decision;
    out->has = 1;
    rs_strlcpy(out->model_version, d->ver[e->ver], sizeof(out->model_version));
}

rs_err_t rs_dedup_get(const rs_dedup_t *d, uint64_t h, rs_dedup_rec_t *out) {
    if (h < d->tail || h >= d->head) return RS_ERR_NOTFOUND;
    rs_dd_rec_of(d, &d->ring[h % d->cap], out);
    return RS_OK;
}

int rs_dedup_foreach(const rs_dedup_t *d, rs_dedup_visit_cb *cb,
                     void *opaque) {
    rs_dedup_rec_t rec;
    for (uint64_t p = d->tail; p < d->head; p++) {
        const rs_dd_ent_t *e = &d->ring[p % d->cap];
        rs_dd_rec_of(d, e, &rec);
        int r = cb(opaque, e->key, e->t, &rec);
        if (r) return r;
    }
    return 0;
}


/* Entry e is written for selection `part` (-1: every entry). */
static int rs_dd_sel(const rs_dd_ent_t *e, int32_t part) {
    return part < 0 || e->part == (uint32_t)part + 1;
}

/* Entries selected (and, remap != NULL, the versions they use: remap[v]
 * = index in the file + 1, 0 unused; *nv their number). */
static uint64_t rs_dd_count(const rs_dedup_t *d, int32_t part,
                            uint16_t *remap, uint64_t *nv) {
    uint64_t n = 0;
    uint8_t used[RS_DD_VERSIONS];
    memset(used, 0, sizeof(used));
    for (uint64_t q = d->tail; q < d->head; q++) {
        const rs_dd_ent_t *e = &d->ring[q % d->cap];
        if (!rs_dd_sel(e, part)) continue;
        n++;
        if (e->has) used[e->ver] = 1;
    }
    *nv = 0;
    for (int v = 0; v < RS_DD_VERSIONS; v++) {
        if (used[v]) (*nv)++;
        if (remap) remap[v] = used[v] ? (uint16_t)*nv : 0;
    }
    return n;
}

size_t rs_dedup_size_part(const rs_dedup_t *d, int32_t part) {
    uint64_t nv, n = rs_dd_count(d, part, NULL, &nv);
    return sizeof(rs_dd_file_t) + (size_t)nv * RS_VERSION_MAX +
           (size_t)n * sizeof(rs_dd_ent_t);
}

size_t rs_dedup_size(const rs_dedup_t *d) {
    uint64_t nv = 0;
    for (int v = 0; v < RS_DD_VERSIONS; v++) nv += d->vrefs[v] > 0;
    return sizeof(rs_dd_file_t) + (size_t)nv * RS_VERSION_MAX +
           (size_t)(d->head - d->tail) * sizeof(rs_dd_ent_t);
}

rs_err_t rs_dedup_write(const rs_dedup_t *d, void *buf, size_t cap,
                        size_t *len) {
    return rs_dedup_write_part(d, -1, buf, cap, len);
}

rs_err_t rs_dedup_write_part(const rs_dedup_t *d, int32_t part, void *buf,
                             size_t cap, size_t *len) {
    uint16_t remap[RS_DD_VERSIONS];
    uint64_t nv, n = rs_dd_count(d, part, remap, &nv);
    size_t need = sizeof(rs_dd_file_t) + (size_t)nv * RS_VERSION_MAX +
                  (size_t)n * sizeof(rs_dd_ent_t);
    *len = 0;
    if (cap < need) return RS_ERR_TOOBIG;
    rs_dd_file_t fh = {RS_DD_MAGIC, RS_DD_FILE_VERSION, n, nv, d->window_ms};
    uint8_t *p = buf;
    memcpy(p, &fh, sizeof(fh));
    p += sizeof(fh);
    for (int v = 0; v < RS_DD_VERSIONS; v++)
        if (remap[v]) {
            memset(p, 0, RS_VERSION_MAX);
            rs_strlcpy((char *)p, d->ver[v], RS_VERSION_MAX);
            p += RS_VERSION_MAX;
        }
    for (uint64_t q = d->tail; q < d->head; q++) {
        rs_dd_ent_t e = d->ring[q % d->cap];
        if (!rs_dd_sel(&e, part)) continue;
        e.ver = e.has ? (uint16_t)(remap[e.ver] - 1) : 0;
        memcpy(p, &e, sizeof(e)); /* with its partition tag */
        p += sizeof(e);
    }
    *len = (size_t)(p - (uint8_t *)buf);
    return RS_OK;
}

/* Entries of a serialization appended (merge: keys present are skipped;
 * read: the table was cleared and a repeated key is an error).  Checked
 * whole before anything is added. */
static rs_err_t rs_dd_load(rs_dedup_t *d, const void *buf, size_t len,
                           int merge, uint64_t *added, char *errstr,
                           size_t errstr_size) {
    rs_dd_file_t fh;
    const uint8_t *p = buf;
    if (added) *added = 0;
    if (len < sizeof(fh) || !buf)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "dedup: %zu bytes, shorter than its header", len);
    memcpy(&fh, p, sizeof(fh));
    if (fh.magic != RS_DD_MAGIC || fh.version != RS_DD_FILE_VERSION)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "dedup: bad magic or version %u", fh.version);
    if (fh.n_ver > RS_DD_VERSIONS ||
        fh.n > (len - sizeof(fh)) / sizeof(rs_dd_ent_t) ||
        len != sizeof(fh) + fh.n_ver * RS_VERSION_MAX +
                   fh.n * sizeof(rs_dd_ent_t))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "dedup: %llu entries and %llu versions do not make "
                       "%zu bytes", (unsigned long long)fh.n,
                       (unsigned long long)fh.n_ver, len);
    const char *vers = (const char *)(p + sizeof(fh));
    for (uint64_t v = 0; v < fh.n_ver; v++)
        if (!memchr(vers + v * RS_VERSION_MAX, '\0', RS_VERSION_MAX))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "dedup: version %llu not terminated",
                           (unsigned long long)v);
    const uint8_t *ents = p + sizeof(fh) + fh.n_ver * RS_VERSION_MAX;
    for (uint64_t i = 0; i < fh.n; i++) {
        rs_dd_ent_t e;
        memcpy(&e, ents + i * sizeof(e), sizeof(e));
        if (e.has > 1 || (e.has && e.ver >= fh.n_ver) || e.part > 65536)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "dedup: entry %llu is malformed",
                           (unsigned long long)i);
    }
    /* The newest entries that fit. */
    uint64_t skip = fh.n > d->cap ? fh.n - d->cap : 0;
    rs_dedup_rec_t rec;
    for (uint64_t i = skip; i < fh.n; i++) {
        rs_dd_ent_t e;
        memcpy(&e, ents + i * sizeof(e), sizeof(e));
        if (rs_idx_pos(d->idx, d->mask, e.key, rs_dd_key_of, d) >= 0) {
            if (merge) continue;
            rs_dd_clear(d);
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "dedup: entry %llu is repeated",
                           (unsigned long long)i);
        }
        if (d->head - d->tail == d->cap) {
            rs_dd_pop_tail(d);
            d->evictions++;
        }
        uint64_t h;
        if (e.t > d->newest) d->newest = e.t;
        uint32_t slot = (uint32_t)(d->head % d->cap);
        d->ring[slot] = (rs_dd_ent_t){.key = e.key, .t = e.t, .part = e.part};
        rs_idx_insert(d->idx, d->mask, e.key, slot);
        h = d->head++;
        if (added) (*added)++;
        if (e.has) {
            memset(&rec, 0, sizeof(rec));
            rec.score = e.score;
            rec.flags = e.flags;
            rec.decision = e.decision;
            rec.has = 1;
            rs_strlcpy(rec.model_version, vers + (size_t)e.ver * RS_VERSION_MAX,
                       sizeof(rec.model_version));
            rs_dedup_set(d, h, &rec);
        }
    }
    return RS_OK;
}

rs_err_t rs_dedup_read(rs_dedup_t *d, const void *buf, size_t len,
                       char *errstr, size_t errstr_size) {
    rs_dd_clear(d);
    rs_err_t err = rs_dd_load(d, buf, len, 0, NULL, errstr, errstr_size);
    if (err) rs_dd_clear(d);
    return err;
}

rs_err_t rs_dedup_merge(rs_dedup_t *d, const void *buf, size_t len,
                        uint64_t *added, char *errstr, size_t errstr_size) {
    return rs_dd_load(d, buf, len, 1, added, errstr, errstr_size);
}

uint64_t rs_dedup_drop_part(rs_dedup_t *d, int32_t part) {
    uint64_t n = 0, k = d->tail;
    if (part < 0) return 0;
    for (uint64_t q = d->tail; q < d->head; q++) {
        rs_dd_ent_t *e = &d->ring[q % d->cap];
        if (!rs_dd_sel(e, part)) {
            if (k != q) d->ring[k % d->cap] = *e;
            k++;
            continue;
        }
        if (e->has && d->vrefs[e->ver]) d->vrefs[e->ver]--;
        n++;
    }
    if (!n) return 0;
    d->head = k;
    /* the survivors moved: index them again */
    memset(d->idx, 0, ((size_t)d->mask + 1) * sizeof(uint32_t));
    for (uint64_t q = d->tail; q < d->head; q++)
        rs_idx_insert(d->idx, d->mask, d->ring[q % d->cap].key,
                      (uint32_t)(q % d->cap));
    return n;
}

void rs_dedup_stats(const rs_dedup_t *d, rs_dedup_stats_t *st) {
    st->entries = d->head - d->tail;
    st->capacity = d->cap;
    st->inserts = d->inserts;
    st->hits = d->hits;
    st->expired = d->expired;
    st->evictions = d->evictions;
    st->bytes = rs_dedup_bytes(d->cap);
}

void rs_dedup_track_gone(rs_dedup_t *d, uint32_t cap) {
    free(d->gone_key);
    free(d->gone_part);
    d->gone_key = cap ? rs_calloc(cap, sizeof(*d->gone_key)) : NULL;
    d->gone_part = cap ? rs_calloc(cap, sizeof(*d->gone_part)) : NULL;
    d->gone_cap = cap;
    d->ngone = 0;
}

int rs_dedup_gone_take(rs_dedup_t *d, const uint64_t **keys,
                       const int32_t **parts) {
    int n = (int)d->ngone;
    *keys = d->gone_key;
    *parts = d->gone_part;
    d->ngone = 0;
    return n;
}

rs_err_t rs_dedup_write_key(const rs_dedup_t *d, uint64_t key, void *buf,
                            size_t cap, size_t *len) {
    *len = 0;
    int64_t pos = rs_idx_pos(d->idx, d->mask, key, rs_dd_key_of, d);
    if (pos < 0) return RS_ERR_NOTFOUND;
    rs_dd_ent_t e = d->ring[d->idx[pos] - 1];
    size_t need = sizeof(rs_dd_file_t) + (e.has ? RS_VERSION_MAX : 0) +
                  sizeof(e);
    *len = need;
    if (cap < need) return RS_ERR_TOOBIG;
    rs_dd_file_t fh = {RS_DD_MAGIC, RS_DD_FILE_VERSION, 1, e.has ? 1u : 0u,
                       d->window_ms};
    uint8_t *p = buf;
    memcpy(p, &fh, sizeof(fh));
    p += sizeof(fh);
    if (e.has) {
        memset(p, 0, RS_VERSION_MAX);
        rs_strlcpy((char *)p, d->ver[e.ver], RS_VERSION_MAX);
        p += RS_VERSION_MAX;
    }
    e.ver = 0;
    memcpy(p, &e, sizeof(e));
    return RS_OK;
}
