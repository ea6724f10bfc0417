/* features_ckpt.c -- checkpoints of the feature state.
 *
 * Format (native byte order; little-endian on every platform we ship):
 *   header   184 bytes, see rs_fe_ckhdr_t (magic, version, fingerprint,
 *            counts, stats, body checksum, header checksum)
 *   body     blob[blob_len], then records in any order:
 *              key:   u8 1, u8 table, u16 n, u16 nl, u16 0, u64 key,
 *                     i64 seen, n items (oldest first), nl labels, and
 *                     if the table has bucketed windows its nbkt buckets
 *                     and the u16 (in place of the 0) recent labels
 *                     and if the table has baselines its nbase
 *                     rs_fe_base_t
 *              index: u8 2, u8[3] 0, u32 ring position, rs_fe_evref_t
 *              fleet: u8 3, u8 table, u16 nbase, u32 0, nbase rs_fe_base_t
 *                     (the table's fleet baselines, written at begin())
 *              conditions: u8 4, u8[3] 0, u32 len, the rs_opcond_t state
 *                     (features.setting_fields only; written at begin())
 *   The body checksum chains rs_checksum32 over 1 MiB blocks.
 *
 * Consistency without a pause: begin() records the scalar state and arms
 * per-slot "done" bitmaps.  step() walks the tables and the event index,
 * writing every live item not yet written.  Before the engine modifies a
 * slot or index entry (rs_fe_touch_*), the item is written first if it is
 * not done yet -- so each item is written exactly once, in its state at
 * begin().  Records go to checksummed 1 MiB blocks in memory (no I/O on
 * the scoring thread: kernel writeback throttling stalled write() for tens
 * of ms); detach() hands the blocks and the header to an
 * rs_features_ckfile_t whose commit() -- on any thread -- writes them,
 * fsyncs, renames over PATH and fsyncs the directory.  Cost: the
 * serialized state is held in memory between begin() and commit().
 */
#define _GNU_SOURCE
#include "features/features_int.h"
#include "features/opcond.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_FE_CK_MAGIC "RSFCKPT1"
#define RS_FE_CK_VERSION 2u /* 2: key records carry the partition tag;
                              * 1 is still read (tags unknown) */

typedef struct rs_fe_ckhdr_s {
    char magic[8];
    uint32_t version;
    uint32_t hdr_size;
    uint64_t fingerprint;
    int64_t wm;
    uint64_t blob_len;
    uint64_t body_len;
    uint64_t nkeys;
    uint64_t nevid;
    uint32_t ev_head, ev_n;
    uint32_t body_crc;
    uint32_t block;
    uint64_t st[12];
    uint32_t hdr_crc;   /* over every byte before it */
    uint32_t pad_;
} rs_fe_ckhdr_t;

_Static_assert(sizeof(rs_fe_ckhdr_t) == 184, "checkpoint header layout");

typedef struct rs_fe_ckkey_s {
    uint8_t type, tab;
    uint16_t n, nl, pad_;
    uint64_t key;
    int64_t seen;
} rs_fe_ckkey_t;         /* 24 bytes */

typedef struct rs_fe_ckev_s {
    uint8_t type, pad_[3];
    uint32_t pos;
    rs_fe_evref_t r;
} rs_fe_ckev_t;          /* 64 bytes */

/* ------------------------------------------------------------ writing */

/* Close the current block: checksum it and queue it for commit(). */
static void rs_fe_ck_flush(rs_fe_ckpt_t *ck) {
    if (!ck->blen) return;
    ck->crc = rs_checksum32(ck->buf, ck->blen, ck->crc);
    if (ck->nblocks == ck->cap_blocks) {
        ck->cap_blocks = ck->cap_blocks ? 2 * ck->cap_blocks : 64;
        ck->blocks = rs_realloc(ck->blocks, ck->cap_blocks * sizeof(*ck->blocks));
    }
    ck->blocks[ck->nblocks++] = ck->buf;
    ck->last_len = ck->blen;
    ck->body_len += ck->blen;
    ck->buf = rs_malloc(RS_FE_CK_BLOCK);
    ck->blen = 0;
}

static void rs_fe_ck_free_blocks(uint8_t **blocks, size_t n) {
    for (size_t i = 0; i < n; i++) rs_free(blocks[i]);
    rs_free(blocks);
}

static void rs_fe_ck_put(rs_fe_ckpt_t *ck, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        size_t k = RS_FE_CK_BLOCK - ck->blen;
        if (k > n) k = n;
        memcpy(ck->buf + ck->blen, b, k);
        ck->blen += k;
        b += k;
        n -= k;
        if (ck->blen == RS_FE_CK_BLOCK) rs_fe_ck_flush(ck);
    }
}

static inline int rs_fe_bit_test_set(uint64_t *bm, uint32_t i) {
    uint64_t m = 1ULL << (i & 63);
    if (bm[i >> 6] & m) return 1;
    bm[i >> 6] |= m;
    return 0;
}

/* A key record, format 2 (see rs_fe_ck_key_rec). */
void rs_fe_ck_key_emit(const rs_features_t *f, int t, uint32_t s,
                       void (*put)(void *ctx, const void *p, size_t n),
                       void *ctx) {
    const rs_fe_tab_t *tb = &f->tab[t];
    rs_fe_hdr_t *h = rs_fe_slot(tb, s);
    rs_fe_ckkey_t k = {1, (uint8_t)t, h->ev_n, h->lab_n, h->rec_n, h->key,
                       tb->seen[s]};
    uint32_t tag[2] = {tb->part[s], 0};
    put(ctx, &k, sizeof(k));
    put(ctx, tag, sizeof(tag));
    const uint8_t *items = rs_fe_items(tb, h);
    for (uint32_t i = 0; i < h->ev_n; i++)
        put(ctx, items + ((h->ev_head + i) % tb->hist) * tb->item_size,
            tb->item_size);
    const rs_fe_lab_t *lab = tb->nlab ? rs_fe_labs(tb, h) : NULL;
    for (uint32_t i = 0; i < h->lab_n; i++)
        put(ctx, &lab[(h->lab_head + i) % tb->nlab], sizeof(*lab));
    if (tb->nbkt) { /* the whole bucket ring, as it is, then the recent labels */
        put(ctx, rs_fe_bkts(tb, h), tb->nbkt * sizeof(rs_fe_bkt_t));
        const rs_fe_lab_t *rc = rs_fe_recs(tb, h);
        for (uint32_t i = 0; i < h->rec_n; i++)
            put(ctx, &rc[(h->rec_head + i) % tb->nrec], sizeof(*rc));
    }
    if (tb->nbase)
        put(ctx, rs_fe_bases(tb, h), tb->nbase * sizeof(rs_fe_base_t));
}

static void rs_fe_ck_put_cb(void *ctx, const void *p, size_t n) {
    rs_fe_ck_put(ctx, p, n);
}

void rs_fe_ck_touch_slot(rs_features_t *f, int t, uint32_t s) {
    rs_fe_tab_t *tb = &f->tab[t];
    if (rs_fe_bit_test_set(tb->ck_done, s)) return;
    rs_fe_hdr_t *h = rs_fe_slot(tb, s);
    if (!h->key) return; /* free at begin */
    rs_fe_ck_key_emit(f, t, s, rs_fe_ck_put_cb, &f->ck);
    f->ck.nkeys++;
}

static int rs_fe_ev_live(uint32_t head, uint32_t n, uint32_t cap, uint32_t pos) {
    return ((uint64_t)head + cap - 1 - pos) % cap < n;
}

void rs_fe_ck_touch_evid(rs_features_t *f, uint32_t pos) {
    rs_fe_evidx_t *x = &f->evidx;
    rs_fe_ckpt_t *ck = &f->ck;
    if (rs_fe_bit_test_set(x->ck_done, pos)) return;
    if (!rs_fe_ev_live(ck->ev_head0, ck->ev_n0, x->cap, pos)) return;
    rs_fe_ckev_t e;
    memset(&e, 0, sizeof(e));
    e.type = 2;
    e.pos = pos;
    e.r = x->ring[pos];
    rs_fe_ck_put(ck, &e, sizeof(e));
    ck->nevid++;
}

rs_err_t rs_features_checkpoint_begin(rs_features_t *f, const char *path,
                                      const void *blob, size_t blob_len,
                                      char *errstr, size_t errstr_size) {
    rs_fe_ckpt_t *ck = &f->ck;
    if (ck->active)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "checkpoint: one is already in progress (%s)", ck->path);
    if (!path || strlen(path) >= sizeof(ck->path))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "checkpoint: bad path");
    if (blob_len && !blob)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "checkpoint: blob_len without blob");
    memset(ck, 0, sizeof(*ck));
    rs_strlcpy(ck->path, path, sizeof(ck->path));
    snprintf(ck->tmp, sizeof(ck->tmp), "%s.tmp", path);
    ck->fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ck->fd < 0) {
        ck->fd = -1;
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "checkpoint: cannot create %s: %s", ck->tmp,
                       strerror(errno));
    }
    ck->buf = rs_malloc(RS_FE_CK_BLOCK);
    for (int t = 0; t < f->ntab; t++)
        memset(f->tab[t].ck_done, 0,
               ((f->tab[t].cap + 63) / 64) * sizeof(uint64_t));
    memset(f->evidx.ck_done, 0, ((f->evidx.cap + 63) / 64) * sizeof(uint64_t));
    ck->ev_head0 = f->evidx.head;
    ck->ev_n0 = f->evidx.n;
    ck->wm0 = f->wm;
    ck->st0 = f->st;
    ck->st0.start_ms = f->t0 == INT64_MAX || f->t0 == INT64_MIN ? 0 : f->t0;
    ck->blob_len = blob_len;
    ck->active = 1;
    if (blob_len) rs_fe_ck_put(ck, blob, blob_len);
    for (int t = 0; t < f->ntab; t++) { /* small: written as they are now */
        const rs_fe_tab_t *tb = &f->tab[t];
        if (!tb->nbase) continue;
        uint8_t r[8] = {3, (uint8_t)t, (uint8_t)tb->nbase, 0, 0, 0, 0, 0};
        rs_fe_ck_put(ck, r, sizeof(r));
        rs_fe_ck_put(ck, tb->fleet, tb->nbase * sizeof(rs_fe_base_t));
    }
    if (f->opc) { /* operating conditions: small, written as they are now */
        uint32_t len = (uint32_t)rs_opcond_state_size(f->opc);
        uint8_t r[8] = {4, 0, 0, 0, 0, 0, 0, 0};
        memcpy(r + 4, &len, 4);
        rs_fe_ck_put(ck, r, sizeof(r));
        uint8_t *st = rs_malloc(len);
        rs_opcond_save(f->opc, st);
        rs_fe_ck_put(ck, st, len);
        free(st);
    }
    return RS_OK;
}

rs_err_t rs_features_checkpoint_step(rs_features_t *f, size_t budget) {
    rs_fe_ckpt_t *ck = &f->ck;
    if (!ck->active) return RS_ERR_STATE;
    while (budget) {
        if (ck->cur_tab < f->ntab) {
            rs_fe_tab_t *tb = &f->tab[ck->cur_tab];
            while (budget && ck->cur_pos < tb->cap) {
                rs_fe_ck_touch_slot(f, ck->cur_tab, ck->cur_pos++);
                budget--;
            }
            if (ck->cur_pos == tb->cap) {
                ck->cur_tab++;
                ck->cur_pos = 0;
            }
        } else if (ck->cur_tab == f->ntab) {
            while (budget && ck->cur_pos < f->evidx.cap) {
                rs_fe_ck_touch_evid(f, ck->cur_pos++);
                budget--;
            }
            if (ck->cur_pos == f->evidx.cap) ck->cur_tab++;
        } else {
            break;
        }
    }
    return ck->cur_tab > f->ntab ? RS_OK : RS_ERR_AGAIN;
}

void rs_features_checkpoint_abort(rs_features_t *f) {
    rs_fe_ckpt_t *ck = &f->ck;
    if (!ck->active) return;
    if (ck->fd >= 0) close(ck->fd);
    unlink(ck->tmp);
    rs_free(ck->buf);
    ck->buf = NULL;
    rs_fe_ck_free_blocks(ck->blocks, ck->nblocks);
    ck->blocks = NULL;
    ck->nblocks = ck->cap_blocks = 0;
    ck->fd = -1;
    ck->active = 0;
}

static void rs_fe_st_pack(const rs_features_stats_t *st, int64_t created,
                          uint64_t *o) {
    o[0] = st->events; o[1] = st->evictions; o[2] = st->expirations;
    o[3] = st->late; o[4] = st->dropped; o[5] = st->labels_applied;
    o[6] = st->labels_unknown; o[7] = st->labels_duplicate;
    o[8] = st->cap_hits; o[9] = st->labels_dropped; o[10] = (uint64_t)created;
    o[11] = (uint64_t)st->start_ms; /* 0 in checkpoints of before it */
}

static void rs_fe_st_unpack(rs_features_stats_t *st, const uint64_t *o) {
    st->events = o[0]; st->evictions = o[1]; st->expirations = o[2];
    st->late = o[3]; st->dropped = o[4]; st->labels_applied = o[5];
    st->labels_unknown = o[6]; st->labels_duplicate = o[7];
    st->cap_hits = o[8]; st->labels_dropped = o[9];
}

/* The durable tail of a checkpoint: fsync, rename, fsync the directory.
 * Touches no feature state, so it may run on any thread. */
struct rs_features_ckfile_s {
    int fd;
    char path[1024], tmp[1040];
    rs_fe_ckhdr_t hdr;
    uint8_t **blocks;    /* [nblocks]; all RS_FE_CK_BLOCK long but the last */
    size_t nblocks, last_len;
};

static int rs_fe_write_all(int fd, const void *p, size_t n) {
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

rs_err_t rs_features_ckfile_commit(rs_features_ckfile_t *cf, char *errstr,
                                   size_t errstr_size) {
    if (!cf) return RS_OK;
    const char *what = NULL;
    int e = 0;
    if (rs_fe_write_all(cf->fd, &cf->hdr, sizeof(cf->hdr))) { what = "write"; e = errno; }
    for (size_t i = 0; i < cf->nblocks && !what; i++)
        if (rs_fe_write_all(cf->fd, cf->blocks[i],
                            i + 1 == cf->nblocks ? cf->last_len : RS_FE_CK_BLOCK)) {
            what = "write";
            e = errno;
        }
    rs_fe_ck_free_blocks(cf->blocks, cf->nblocks);
    if (!what && fsync(cf->fd)) { what = "fsync"; e = errno; }
    if (close(cf->fd) && !what) { what = "close"; e = errno; }
    if (!what && rename(cf->tmp, cf->path)) { what = "rename"; e = errno; }
    rs_err_t err = RS_OK;
    if (what) {
        unlink(cf->tmp);
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "checkpoint: %s %s: %s",
                      what, cf->tmp, strerror(e));
    } else {
        /* make the rename durable */
        char dir[1024];
        rs_strlcpy(dir, cf->path, sizeof(dir));
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    rs_free(cf);
    return err;
}

void rs_features_ckfile_discard(rs_features_ckfile_t *cf) {
    if (!cf) return;
    rs_fe_ck_free_blocks(cf->blocks, cf->nblocks);
    close(cf->fd);
    unlink(cf->tmp);
    rs_free(cf);
}

rs_err_t rs_features_checkpoint_detach(rs_features_t *f,
                                       rs_features_ckfile_t **out,
                                       char *errstr, size_t errstr_size) {
    rs_fe_ckpt_t *ck = &f->ck;
    *out = NULL;
    if (!ck->active)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "checkpoint: none in progress");
    rs_err_t err = rs_features_checkpoint_step(f, SIZE_MAX);
    if (err != RS_OK) {
        rs_features_checkpoint_abort(f);
        return rs_errf(errstr, errstr_size, err, "checkpoint: step failed");
    }
    rs_fe_ck_flush(ck);
    rs_fe_ckhdr_t h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, RS_FE_CK_MAGIC, 8);
    h.version = RS_FE_CK_VERSION;
    h.hdr_size = sizeof(h);
    h.fingerprint = f->fingerprint;
    h.wm = ck->wm0;
    h.blob_len = ck->blob_len;
    h.body_len = ck->body_len;
    h.nkeys = ck->nkeys;
    h.nevid = ck->nevid;
    h.ev_head = ck->ev_head0;
    h.ev_n = ck->ev_n0;
    h.body_crc = ck->crc;
    h.block = RS_FE_CK_BLOCK;
    rs_fe_st_pack(&ck->st0, rs_clock_wall_ms(), h.st);
    h.hdr_crc = rs_checksum32(&h, offsetof(rs_fe_ckhdr_t, hdr_crc), 0);
    rs_features_ckfile_t *cf = rs_calloc(1, sizeof(*cf));
    cf->hdr = h;
    cf->blocks = ck->blocks;
    cf->nblocks = ck->nblocks;
    cf->last_len = ck->last_len;
    ck->blocks = NULL;
    ck->nblocks = ck->cap_blocks = 0;
    cf->fd = ck->fd;
    rs_strlcpy(cf->path, ck->path, sizeof(cf->path));
    rs_strlcpy(cf->tmp, ck->tmp, sizeof(cf->tmp));
    ck->fd = -1;
    rs_free(ck->buf);
    ck->buf = NULL;
    ck->active = 0;
    *out = cf;
    return RS_OK;
}

rs_err_t rs_features_checkpoint_end(rs_features_t *f, char *errstr,
                                    size_t errstr_size) {
    rs_features_ckfile_t *cf;
    rs_err_t err = rs_features_checkpoint_detach(f, &cf, errstr, errstr_size);
    if (err) return err;
    return rs_features_ckfile_commit(cf, errstr, errstr_size);
}

rs_err_t rs_features_checkpoint_write(rs_features_t *f, const char *path,
                                      const void *blob, size_t blob_len,
                                      char *errstr, size_t errstr_size) {
    rs_err_t err = rs_features_checkpoint_begin(f, path, blob, blob_len,
                                                errstr, errstr_size);
    if (err) return err;
    return rs_features_checkpoint_end(f, errstr, errstr_size);
}

/* ------------------------------------------------------------ reading */

static rs_err_t rs_fe_corrupt(rs_features_t *f, const char *path, char *errstr,
                              size_t errstr_size, const char *what) {
    rs_fe_reset(f);
    return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                   "checkpoint %s: %s; not loaded", path, what);
}

/* Times a checkpoint may hold.  The engine stores only event times > 0
 * (rs_features_process rejects the others), label arrivals >= their
 * event's time and a watermark that is the largest event time (INT64_MIN
 * before the first event).  Capped at 2^62 ms, as the model's cache
 * reader: then what the engine computes from two such times (t - item,
 * watermark - last seen) or from one and a duration of the config table
 * (watermark - allowed_lateness, <= 2^62) cannot overflow int64. */
#define RS_FE_CK_TIME_MAX (INT64_C(1) << 62)

static int rs_fe_ck_time_ok(int64_t t) {
    return t > 0 && t <= RS_FE_CK_TIME_MAX;
}

/* The times of key record number `rec` (header k, then p: its items and
 * labels, already bounds-checked): NULL if all are in range, else why
 * (written into why[why_size]) naming the record and the field. */
static const char *rs_fe_ck_key_times(const rs_fe_tab_t *tb,
                                      const rs_fe_ckkey_t *k,
                                      const uint8_t *p, uint64_t rec,
                                      char *why, size_t why_size) {
    if (!rs_fe_ck_time_ok(k->seen)) {
        snprintf(why, why_size,
                 "key record %llu (table %u): last-seen time %lld is outside "
                 "(0, 2^62] ms",
                 (unsigned long long)rec, k->tab, (long long)k->seen);
        return why;
    }
    for (uint32_t i = 0; i < k->n; i++) {
        int64_t t;
        memcpy(&t, p + (size_t)i * tb->item_size, sizeof(t));
        if (!rs_fe_ck_time_ok(t)) {
            snprintf(why, why_size,
                     "key record %llu (table %u): item %u event time %lld is "
                     "outside (0, 2^62] ms",
                     (unsigned long long)rec, k->tab, i, (long long)t);
            return why;
        }
    }
    p += (size_t)k->n * tb->item_size;
    for (uint32_t i = 0; i < k->nl; i++) {
        rs_fe_lab_t l;
        memcpy(&l, p + i * sizeof(l), sizeof(l));
        const char *f = !rs_fe_ck_time_ok(l.et) ? "event time"
                        : !rs_fe_ck_time_ok(l.arr) ? "arrival time"
                                                    : NULL;
        if (f) {
            snprintf(why, why_size,
                     "key record %llu (table %u): label %u %s %lld is "
                     "outside (0, 2^62] ms",
                     (unsigned long long)rec, k->tab, i, f,
                     (long long)(f[0] == 'e' ? l.et : l.arr));
            return why;
        }
    }
    return NULL;
}

const char *rs_fe_ck_key_rec(rs_features_t *f, const uint8_t *body,
                             uint64_t len, uint64_t *off, uint32_t version,
                             int upsert, int32_t part, uint64_t rec,
                             char *why, size_t why_size) {
    const char *bad = NULL;
    rs_fe_ckkey_t k;
    if (len - *off < sizeof(k)) return "truncated key record";
    memcpy(&k, body + *off, sizeof(k));
    *off += sizeof(k);
    uint32_t tag[2] = {0, 0};
    if (version >= 2) {
        if (len - *off < sizeof(tag)) return "truncated key record";
        memcpy(tag, body + *off, sizeof(tag));
        *off += sizeof(tag);
        if (tag[0] > 65535 || tag[1]) return "bad key record partition tag";
    }
    if (k.tab >= f->ntab) return "key record for an unknown table";
    rs_fe_tab_t *tb = &f->tab[k.tab];
    uint64_t need = (uint64_t)k.n * tb->item_size +
                    (uint64_t)k.nl * sizeof(rs_fe_lab_t) +
                    (uint64_t)tb->nbkt * sizeof(rs_fe_bkt_t) +
                    (uint64_t)k.pad_ * sizeof(rs_fe_lab_t);
    if (!k.key || k.n > tb->hist || k.nl > tb->nlab || k.pad_ > tb->nrec ||
        len - *off < need)
        return "bad key record";
    int64_t old = rs_fe_tab_find(tb, k.key);
    if (old >= 0 && upsert) rs_fe_tab_remove(f, k.tab, (uint32_t)old);
    else if (old >= 0) return "more keys than slots, or a key twice";
    if (!tb->nfree) return "more keys than slots, or a key twice";
    if ((bad = rs_fe_ck_key_times(tb, &k, body + *off, rec, why, why_size)))
        return bad;
    uint32_t s = rs_fe_tab_alloc(tb, k.key, NULL);
    tb->part[s] = part >= 0 ? (uint16_t)(part + 1) : (uint16_t)tag[0];
    rs_fe_hdr_t *sh = rs_fe_slot(tb, s);
    tb->seen[s] = k.seen;
    memcpy(rs_fe_items(tb, sh), body + *off, (size_t)k.n * tb->item_size);
    *off += (uint64_t)k.n * tb->item_size;
    sh->ev_n = k.n;
    if (k.nl) {
        memcpy(rs_fe_labs(tb, sh), body + *off, k.nl * sizeof(rs_fe_lab_t));
        *off += k.nl * sizeof(rs_fe_lab_t);
    }
    sh->lab_n = k.nl;
    if (tb->nbkt) {
        rs_fe_bkt_t *bk = rs_fe_bkts(tb, sh);
        memcpy(bk, body + *off, tb->nbkt * sizeof(rs_fe_bkt_t));
        *off += tb->nbkt * sizeof(rs_fe_bkt_t);
        for (uint32_t j = 0; j < tb->nbkt && !bad; j++)
            if (bk[j].b1 < 0 || bk[j].nv > bk[j].n ||
                !isfinite(bk[j].sum) ||
                (bk[j].b1 && (uint32_t)((bk[j].b1 - 1) % (int32_t)tb->nbkt) != j)) {
                snprintf(why, why_size,
                         "key record %llu (table %u): bucket %u is "
                         "inconsistent", (unsigned long long)rec,
                         k.tab, j);
                bad = why;
            }
        if (bad) return bad;
        rs_fe_lab_t *rc = rs_fe_recs(tb, sh);
        memcpy(rc, body + *off, (size_t)k.pad_ * sizeof(rs_fe_lab_t));
        *off += (uint64_t)k.pad_ * sizeof(rs_fe_lab_t);
        for (uint32_t j = 0; j < k.pad_ && !bad; j++)
            if (!rs_fe_ck_time_ok(rc[j].et) || !rs_fe_ck_time_ok(rc[j].arr) ||
                (j && rc[j].et < rc[j - 1].et)) {
                snprintf(why, why_size,
                         "key record %llu (table %u): recent label %u "
                         "is out of range or order",
                         (unsigned long long)rec, k.tab, j);
                bad = why;
            }
        if (bad) return bad;
        sh->rec_n = k.pad_;
    }
    if (tb->nbase) {
        size_t bl = tb->nbase * sizeof(rs_fe_base_t);
        if (len - *off < bl) return "truncated key record";
        rs_fe_base_t *bs = rs_fe_bases(tb, sh);
        memcpy(bs, body + *off, bl);
        *off += bl;
        for (uint32_t j = 0; j < tb->nbase && !bad; j++)
            if (!(bs[j].n >= 0) || !isfinite(bs[j].mean) ||
                !(bs[j].m2 >= 0) || !isfinite(bs[j].m2)) {
                snprintf(why, why_size,
                         "key record %llu (table %u): baseline %u is "
                         "out of range", (unsigned long long)rec,
                         k.tab, j);
                bad = why;
            }
        if (bad) return bad;
    }
    return NULL;
}

rs_err_t rs_features_checkpoint_read(rs_features_t *f, const char *path,
                                     void **blob_out, size_t *blob_len,
                                     char *errstr, size_t errstr_size) {
    if (blob_out) *blob_out = NULL;
    if (blob_len) *blob_len = 0;
    if (f->ck.active)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "checkpoint: cannot read while writing one");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "checkpoint: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        close(fd);
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "checkpoint: stat %s: %s",
                       path, strerror(e));
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *buf = rs_malloc(size ? size : 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    rs_err_t err = RS_OK;
    char why[256];
    rs_fe_ckhdr_t h;
    if (got < size) {
        free(buf);
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "checkpoint: short read of %s", path);
    }
    if (size < sizeof(h)) {
        snprintf(why, sizeof(why), "truncated (%zu bytes, the header alone is %zu)",
                 size, sizeof(h));
        err = rs_fe_corrupt(f, path, errstr, errstr_size, why);
        goto done;
    }
    memcpy(&h, buf, sizeof(h));
    if (memcmp(h.magic, RS_FE_CK_MAGIC, 8)) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size,
                            "bad magic (not a feature checkpoint)");
        goto done;
    }
    if (h.hdr_crc != rs_checksum32(&h, offsetof(rs_fe_ckhdr_t, hdr_crc), 0)) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size,
                            "header checksum mismatch");
        goto done;
    }
    if ((h.version != RS_FE_CK_VERSION && h.version != 1) ||
        h.hdr_size != sizeof(h) ||
        h.block != RS_FE_CK_BLOCK) {
        snprintf(why, sizeof(why), "format version %u, this build reads %u",
                 h.version, RS_FE_CK_VERSION);
        err = rs_fe_corrupt(f, path, errstr, errstr_size, why);
        goto done;
    }
    if (h.fingerprint != f->fingerprint) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size,
                            "written with a different feature layout or pool "
                            "sizes (config changed)");
        goto done;
    }
    if (h.body_len != size - sizeof(h)) {
        snprintf(why, sizeof(why), "truncated or padded (body %zu bytes, "
                 "header says %llu)", size - sizeof(h),
                 (unsigned long long)h.body_len);
        err = rs_fe_corrupt(f, path, errstr, errstr_size, why);
        goto done;
    }
    const uint8_t *body = buf + sizeof(h);
    uint32_t crc = 0;
    for (uint64_t off = 0; off < h.body_len; off += RS_FE_CK_BLOCK) {
        uint64_t n = h.body_len - off;
        if (n > RS_FE_CK_BLOCK) n = RS_FE_CK_BLOCK;
        crc = rs_checksum32(body + off, (size_t)n, crc);
    }
    if (crc != h.body_crc) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size, "body checksum mismatch");
        goto done;
    }
    if (h.blob_len > h.body_len || h.ev_n > f->evidx.cap ||
        h.ev_head >= RS_MAX(f->evidx.cap, 1u)) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size, "bad header counts");
        goto done;
    }
    /* st[0] is the event count: a watermark only before the first event */
    if (!(h.wm == INT64_MIN && h.st[0] == 0) && !rs_fe_ck_time_ok(h.wm)) {
        snprintf(why, sizeof(why),
                 "watermark %lld is outside (0, 2^62] ms (after %llu events)",
                 (long long)h.wm, (unsigned long long)h.st[0]);
        err = rs_fe_corrupt(f, path, errstr, errstr_size, why);
        goto done;
    }

    rs_fe_reset(f);
    /* index positions seen (ck_done is free: no checkpoint is active, and
     * begin() clears it): each live position exactly once, so the ev_n
     * records cover the live range and no zeroed entry is left in it */
    memset(f->evidx.ck_done, 0, ((f->evidx.cap + 63) / 64) * sizeof(uint64_t));
    uint64_t off = h.blob_len, nkeys = 0, nevid = 0;
    const char *bad = NULL;
    while (off < h.body_len && !bad) {
        uint8_t type = body[off];
        if (type == 1) {
            if ((bad = rs_fe_ck_key_rec(f, body, h.body_len, &off, h.version,
                                        0, -1, nkeys, why, sizeof(why))))
                break;
            nkeys++;
        } else if (type == 3) {
            uint8_t r[8];
            if (h.body_len - off < sizeof(r)) { bad = "truncated fleet record"; break; }
            memcpy(r, body + off, sizeof(r));
            off += sizeof(r);
            if (r[1] >= f->ntab || r[2] != f->tab[r[1]].nbase || !r[2] ||
                h.body_len - off < r[2] * sizeof(rs_fe_base_t)) {
                bad = "bad fleet record";
                break;
            }
            rs_fe_base_t *fl = f->tab[r[1]].fleet;
            memcpy(fl, body + off, r[2] * sizeof(rs_fe_base_t));
            off += r[2] * sizeof(rs_fe_base_t);
            for (uint32_t j = 0; j < r[2] && !bad; j++)
                if (!(fl[j].n >= 0) || !isfinite(fl[j].mean) ||
                    !(fl[j].m2 >= 0) || !isfinite(fl[j].m2))
                    bad = "fleet baseline out of range";
        } else if (type == 4) {
            uint8_t r[8];
            uint32_t len;
            if (h.body_len - off < sizeof(r)) { bad = "truncated conditions record"; break; }
            memcpy(r, body + off, sizeof(r));
            memcpy(&len, r + 4, 4);
            off += sizeof(r);
            if (!f->opc || h.body_len - off < len) {
                bad = "bad conditions record";
                break;
            }
            bad = rs_opcond_load(f->opc, body + off, len);
            off += len;
        } else if (type == 2) {
            rs_fe_ckev_t e;
            if (h.body_len - off < sizeof(e)) { bad = "truncated index record"; break; }
            memcpy(&e, body + off, sizeof(e));
            off += sizeof(e);
            if (e.pos >= f->evidx.cap ||
                !rs_fe_ev_live(h.ev_head, h.ev_n, f->evidx.cap, e.pos)) {
                bad = "bad index record";
                break;
            }
            if (rs_fe_bit_test_set(f->evidx.ck_done, e.pos)) {
                snprintf(why, sizeof(why),
                         "index record %llu: ring position %u twice",
                         (unsigned long long)nevid, e.pos);
                bad = why;
                break;
            }
            if (!rs_fe_ck_time_ok(e.r.t)) {
                snprintf(why, sizeof(why),
                         "index record %llu (ring position %u): event time "
                         "%lld is outside (0, 2^62] ms",
                         (unsigned long long)nevid, e.pos, (long long)e.r.t);
                bad = why;
                break;
            }
            f->evidx.ring[e.pos] = e.r;
            nevid++;
        } else {
            bad = "unknown record type";
        }
    }
    if (!bad && (nkeys != h.nkeys || nevid != h.nevid || nevid != h.ev_n))
        bad = "record counts differ from the header";
    if (bad) {
        err = rs_fe_corrupt(f, path, errstr, errstr_size, bad);
        goto done;
    }
    f->evidx.head = h.ev_head;
    f->evidx.n = h.ev_n;
    for (uint32_t i = 0; i < h.ev_n; i++)
        rs_fe_evidx_index(&f->evidx,
                          (h.ev_head + f->evidx.cap - 1 - i) % f->evidx.cap);
    f->wm = h.wm;
    rs_fe_st_unpack(&f->st, h.st);
    /* the state's start (velocity coverage): unknown in older files */
    f->t0 = h.st[11] && rs_fe_ck_time_ok((int64_t)h.st[11])
                ? (int64_t)h.st[11]
                : h.st[0] ? INT64_MIN : INT64_MAX;
    if (blob_out && h.blob_len) {
        *blob_out = rs_malloc((size_t)h.blob_len);
        memcpy(*blob_out, body, (size_t)h.blob_len);
    }
    if (blob_len) *blob_len = (size_t)h.blob_len;
done:
    free(buf);
    return err;
}
