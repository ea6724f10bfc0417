/* features_part.c -- partition-local feature state: the entity slots and
 * event-index entries of one input partition as a byte stream (no I/O),
 * so a partition's state can leave an instance (revoke) and arrive on
 * another (assign) through a file or a changelog topic.
 *
 * What belongs to a partition: the ENTITY table's slots tagged with it
 * (the partition of the entity's newest event, tab->part) and the event
 * index entries of its events (evref.part).  Every other key table
 * (counterparty, type, categorical) and the fleet baselines are
 * instance-wide and never leave with a partition.
 *
 * Stream (native byte order, as the checkpoint file):
 *   head   u8 6 | u8 format 1 | u16 0 | u32 0 | u64 layout fingerprint
 *   then records in any order:
 *     key    the checkpoint's key record, format 2 (features_ckpt.c:
 *            24-byte head, u32 partition + 1, u32 0, items, labels,
 *            buckets, recent labels, baselines)
 *     index  u8 2 | u8[3] 0 | u32 0 | rs_fe_evref_t (56 bytes)
 * A stream of only the head is a valid empty partition.
 *
 * Reading is an UPSERT: a key or event already present is replaced (a
 * changelog applies newer records over a local checkpoint).  Imported
 * events join the index at its head (newest end): their FIFO age is that
 * of their arrival here, which matters only once the index is full
 * (features.label_index).
 *
 * Threads: the owner thread of f, as every other function of f.
 */
#include "features/features_int.h"

#include <string.h>

#define RS_FE_PART_FORMAT 1u

typedef struct rs_fe_part_head_s {
    uint8_t type, format;
    uint16_t z16;
    uint32_t z32;
    uint64_t fingerprint;
} rs_fe_part_head_t; /* 16 bytes */

typedef struct rs_fe_part_ev_s {
    uint8_t type, pad_[3];
    uint32_t pos;
    rs_fe_evref_t r;
} rs_fe_part_ev_t; /* 64 bytes: the checkpoint's index record */

_Static_assert(sizeof(rs_fe_part_head_t) == 16, "partition stream head");
_Static_assert(sizeof(rs_fe_part_ev_t) == 64, "partition index record");

/* An output buffer that counts what does not fit. */
typedef struct rs_fe_out_s {
    uint8_t *buf;
    size_t cap, len;
} rs_fe_out_t;

static void rs_fe_out_put(void *ctx, const void *p, size_t n) {
    rs_fe_out_t *o = ctx;
    if (o->buf && o->len + n <= o->cap) memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void rs_fe_part_head(const rs_features_t *f, rs_fe_out_t *o) {
    rs_fe_part_head_t h = {6, RS_FE_PART_FORMAT, 0, 0, f->fingerprint};
    rs_fe_out_put(o, &h, sizeof(h));
}

static void rs_fe_part_ev(rs_fe_out_t *o, const rs_fe_evref_t *r) {
    rs_fe_part_ev_t e;
    memset(&e, 0, sizeof(e));
    e.type = 2;
    e.r = *r;
    rs_fe_out_put(o, &e, sizeof(e));
}

static uint16_t rs_fe_tag(int32_t partition) {
    return partition >= 0 && partition < 65535 ? (uint16_t)(partition + 1)
                                               : 0;
}

void rs_features_set_partition(rs_features_t *f, int32_t partition) {
    f->cur_part = rs_fe_tag(partition) ? partition : -1;
}

static rs_err_t rs_fe_out_done(const rs_fe_out_t *o, size_t *len) {
    *len = o->len;
    return o->len <= o->cap ? RS_OK : RS_ERR_TOOBIG;
}

rs_err_t rs_features_part_write(const rs_features_t *f, int32_t partition,
                                void *buf, size_t cap, size_t *len,
                                uint64_t *nkeys) {
    uint16_t tag = rs_fe_tag(partition);
    rs_fe_out_t o = {buf, buf ? cap : 0, 0};
    uint64_t nk = 0;
    if (!len || !tag) return RS_ERR_INVALID;
    rs_fe_part_head(f, &o);
    if (f->ent_tab >= 0) {
        const rs_fe_tab_t *tb = &f->tab[f->ent_tab];
        for (uint32_t s = 0; s < tb->cap; s++)
            if (tb->part[s] == tag && rs_fe_slot(tb, s)->key) {
                rs_fe_ck_key_emit(f, f->ent_tab, s, rs_fe_out_put, &o);
                nk++;
            }
    }
    const rs_fe_evidx_t *x = &f->evidx;
    for (uint32_t i = 0; i < x->n; i++) { /* oldest first */
        const rs_fe_evref_t *r = &x->ring[(x->head + x->cap - x->n + i) %
                                          x->cap];
        if (r->part == tag) rs_fe_part_ev(&o, r);
    }
    if (nkeys) *nkeys = nk;
    return rs_fe_out_done(&o, len);
}

rs_err_t rs_features_entity_write(const rs_features_t *f,
                                  const char *entity_id, void *buf,
                                  size_t cap, size_t *len) {
    rs_fe_out_t o = {buf, buf ? cap : 0, 0};
    if (!len || !entity_id || f->ent_tab < 0) return RS_ERR_INVALID;
    uint64_t key = rs_hash_str(entity_id);
    if (!key) key = 1; /* rs_fe_key */
    int64_t s = rs_fe_tab_find(&f->tab[f->ent_tab], key);
    if (s < 0) return RS_ERR_NOTFOUND;
    rs_fe_part_head(f, &o);
    rs_fe_ck_key_emit(f, f->ent_tab, (uint32_t)s, rs_fe_out_put, &o);
    return rs_fe_out_done(&o, len);
}

rs_err_t rs_features_event_write(const rs_features_t *f, const char *event_id,
                                 void *buf, size_t cap, size_t *len) {
    rs_fe_out_t o = {buf, buf ? cap : 0, 0};
    if (!len || !event_id) return RS_ERR_INVALID;
    int64_t rp = rs_fe_evidx_find(&f->evidx, rs_hash_str(event_id));
    if (rp < 0) return RS_ERR_NOTFOUND;
    rs_fe_part_head(f, &o);
    rs_fe_part_ev(&o, &f->evidx.ring[rp]);
    return rs_fe_out_done(&o, len);
}

/* Import one event-index entry (upsert), tagged `tag`. */
static void rs_fe_part_ev_import(rs_features_t *f, const rs_fe_evref_t *in,
                                 uint16_t tag) {
    rs_fe_evidx_t *x = &f->evidx;
    int64_t rp = rs_fe_evidx_find(x, in->id);
    rs_fe_evref_t r = *in;
    r.part = tag;
    if (rp >= 0) {
        x->ring[rp] = r;
        return;
    }
    rs_fe_evidx_put(f, &r);
}

rs_err_t rs_features_part_read(rs_features_t *f, int32_t partition,
                               const void *buf, size_t len, uint64_t *nkeys,
                               char *errstr, size_t errstr_size) {
    const uint8_t *b = buf;
    uint16_t tag = rs_fe_tag(partition);
    char why[256];
    const char *bad = NULL;
    uint64_t nk = 0, nev = 0;
    if (nkeys) *nkeys = 0;
    if (!tag || (len && !buf))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "feature state of partition %d: bad arguments",
                       (int)partition);
    if (f->ck.active)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "feature state of partition %d: a checkpoint is in "
                       "progress", (int)partition);
    rs_fe_part_head_t h;
    if (len < sizeof(h))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "feature state of partition %d: %zu bytes, shorter "
                       "than its head", (int)partition, len);
    memcpy(&h, b, sizeof(h));
    if (h.type != 6 || h.format != RS_FE_PART_FORMAT || h.z16 || h.z32)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "feature state of partition %d: bad head (type %u, "
                       "format %u)", (int)partition, h.type, h.format);
    if (h.fingerprint != f->fingerprint)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "feature state of partition %d: written with a "
                       "different feature layout or pool sizes (config "
                       "changed)", (int)partition);
    uint64_t off = sizeof(h);
    while (off < len && !bad) {
        uint8_t type = b[off];
        if (type == 1) {
            const int64_t t0 = f->ent_tab;
            uint8_t tab = off + 1 < len ? b[off + 1] : 0xff;
            if (t0 < 0 || tab != (uint8_t)t0) {
                bad = "key record of a table that is not the entity table";
                break;
            }
            bad = rs_fe_ck_key_rec(f, b, len, &off, 2, 1, partition, nk, why,
                                   sizeof(why));
            nk++;
        } else if (type == 2) {
            rs_fe_part_ev_t e;
            if (len - off < sizeof(e)) { bad = "truncated index record"; break; }
            memcpy(&e, b + off, sizeof(e));
            off += sizeof(e);
            if (e.pad_[0] || e.pad_[1] || e.pad_[2] || e.pos || !e.r.id ||
                e.r.labelled > 1 || e.r.t <= 0 ||
                e.r.t > (INT64_C(1) << 62)) {
                snprintf(why, sizeof(why), "index record %llu is malformed",
                         (unsigned long long)nev);
                bad = why;
                break;
            }
            rs_fe_part_ev_import(f, &e.r, tag);
            nev++;
        } else {
            bad = "unknown record type";
        }
    }
    if (bad) {
        /* never half-loaded: the partition's state goes */
        rs_features_part_drop(f, partition, NULL);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "feature state of partition %d: %s; dropped",
                       (int)partition, bad);
    }
    if (nkeys) *nkeys = nk;
    return RS_OK;
}

rs_err_t rs_features_part_drop(rs_features_t *f, int32_t partition,
                               uint64_t *nkeys) {
    uint16_t tag = rs_fe_tag(partition);
    uint64_t nk = 0;
    if (nkeys) *nkeys = 0;
    if (!tag) return RS_ERR_INVALID;
    if (f->ck.active) return RS_ERR_STATE;
    if (f->ent_tab >= 0) {
        rs_fe_tab_t *tb = &f->tab[f->ent_tab];
        for (uint32_t s = 0; s < tb->cap; s++)
            if (tb->part[s] == tag && rs_fe_slot(tb, s)->key) {
                rs_fe_tab_remove(f, f->ent_tab, s);
                nk++;
            }
    }
    /* the index keeps its other entries in order */
    rs_fe_evidx_t *x = &f->evidx;
    uint32_t n = x->n, k = 0, first = (x->head + x->cap - x->n) % x->cap;
    int any = 0;
    for (uint32_t i = 0; i < n && !any; i++)
        any = x->ring[(first + i) % x->cap].part == tag;
    if (any) {
        for (uint32_t i = 0; i < n; i++) {
            const rs_fe_evref_t r = x->ring[(first + i) % x->cap];
            if (r.part != tag) x->ring[(first + k++) % x->cap] = r;
        }
        for (uint32_t i = k; i < n; i++)
            memset(&x->ring[(first + i) % x->cap], 0, sizeof(rs_fe_evref_t));
        x->n = k;
        x->head = (first + k) % x->cap;
        rs_fe_evidx_rebuild(x);
    }
    if (nkeys) *nkeys = nk;
    return RS_OK;
}

int rs_features_part_list(const rs_features_t *f, int32_t *parts, int max) {
    uint8_t seen[65536 / 8];
    int n = 0;
    memset(seen, 0, sizeof(seen));
    if (f->ent_tab >= 0) {
        const rs_fe_tab_t *tb = &f->tab[f->ent_tab];
        for (uint32_t s = 0; s < tb->cap; s++)
            if (tb->part[s] && rs_fe_slot(tb, s)->key)
                seen[tb->part[s] >> 3] |= (uint8_t)(1u << (tb->part[s] & 7));
    }
    const rs_fe_evidx_t *x = &f->evidx;
    for (uint32_t i = 0; i < x->n; i++) {
        uint32_t t = x->ring[(x->head + x->cap - x->n + i) % x->cap].part;
        if (t && t < 65536) seen[t >> 3] |= (uint8_t)(1u << (t & 7));
    }
    for (uint32_t t = 1; t < 65536; t++)
        if (seen[t >> 3] & (1u << (t & 7))) {
            if (n < max) parts[n] = (int32_t)t - 1;
            n++;
        }
    return n;
}
