/* seq_cache.c -- the sequence model's entity caches: the index, the LRU
 * list and the rings of keys/values scoring reads, and their serialisation
 * across restarts (rs_seq_caches_*).
 * Design note: seq.c; what the files share: seq_priv.h. */
#define _GNU_SOURCE
#include "model/seq_priv.h"

static int32_t rs_seq_ent_part(const rs_seq_t *s, uint32_t i);

/* ------------------------------------------------------ entity caches */

static void rs_seq_lru_unlink(rs_seq_t *s, uint32_t i) {
    rs_seq_ent_t *e = &s->ent[i];
    if (e->prev >= 0) s->ent[e->prev].next = e->next; else s->lru_head = e->next;
    if (e->next >= 0) s->ent[e->next].prev = e->prev; else s->lru_tail = e->prev;
    e->prev = e->next = -1;
}

static void rs_seq_lru_front(rs_seq_t *s, uint32_t i) {
    rs_seq_ent_t *e = &s->ent[i];
    e->prev = -1;
    e->next = s->lru_head;
    if (s->lru_head >= 0) s->ent[s->lru_head].prev = (int32_t)i;
    s->lru_head = (int32_t)i;
    if (s->lru_tail < 0) s->lru_tail = (int32_t)i;
}

static void rs_seq_ent_unindex(rs_seq_t *s, uint32_t i) {
    rs_idx_unindex(s->eindex, s->emask, i, rs_seq_ent_key, s);
}

/* Slot of `key`, created (evicting the LRU entity if full) when absent. */
uint32_t rs_seq_ent_get(rs_seq_t *s, uint64_t key, uint32_t *flags) {
    int64_t pos = rs_seq_ent_pos(s, key);
    if (pos >= 0) {
        uint32_t i = s->eindex[pos] - 1;
        rs_seq_lru_unlink(s, i);
        rs_seq_lru_front(s, i);
        if (!s->ent[i].n) *flags |= RS_MODEL_OUT_NEW_ENTITY;
        return i;
    }
    uint32_t i;
    if (s->eused < s->ecap) {
        i = s->eused++;
    } else {
        i = (uint32_t)s->lru_tail;
        if (s->gone_cap) { /* changelog hook: a tombstone for it */
            int32_t gp = rs_seq_ent_part(s, i);
            if (gp >= 0 && s->ngone < s->gone_cap) {
                s->gone_key[s->ngone] = s->ent[i].key;
                s->gone_part[s->ngone++] = gp;
            } else if (gp >= 0) {
                s->gone_lost++;
            }
        }
        rs_seq_ent_unindex(s, (uint32_t)rs_seq_ent_pos(s, s->ent[i].key));
        rs_seq_lru_unlink(s, i);
        s->evictions++;
        *flags |= RS_MODEL_OUT_EVICTED;
    }
    rs_seq_ent_t *e = &s->ent[i];
    memset(e, 0, sizeof(*e));
    e->key = key;
    rs_idx_insert(s->eindex, s->emask, key, i);
    rs_seq_lru_front(s, i);
    *flags |= RS_MODEL_OUT_NEW_ENTITY;
    return i;
}

/* Append row r's K/V (every layer) and meta to entity i's ring. */
void rs_seq_ent_append(rs_seq_t *s, uint32_t i, const rs_seq_run_t *rs,
                       int r, const rs_model_input_t *in,
                       uint64_t lpos1) {
    rs_seq_ent_t *e = &s->ent[i];
    const int d = s->d;
    size_t slot = (size_t)i * s->L + e->head;
    float *kv = s->ekv + slot * s->stride;
    for (int l = 0; l < s->nl; l++)
        memcpy(kv + (size_t)l * 2 * d,
               rs->qkv + ((size_t)l * rs->cap + r) * 3 * d + d,
               sizeof(float) * 2 * (size_t)d);
    s->et[slot] = in->event_time_ms;
    s->elpos[slot] = lpos1; /* learning-log position + 1, 0 = none */
    rs_seq_meta_t *m = &s->emeta[slot];
    m->amount = in->amount;
    rs_strlcpy(m->id, in->event_id, sizeof(m->id));
    rs_strlcpy(m->cp, in->counterparty_id ? in->counterparty_id : "",
               sizeof(m->cp));
    e->head = (e->head + 1) % (uint32_t)s->L;
    if (e->n < (uint32_t)s->L) e->n++;
}

uint64_t rs_seq_conf_entity_bytes(const rs_model_conf_t *conf) {
    const uint64_t L = (uint64_t)conf->seq.history,
                   stride = (uint64_t)conf->seq.layers * 2 *
                            (uint64_t)conf->seq.d_model;
    /* as rs_seq_stats: cache, its index slots, times and metadata */
    return sizeof(rs_seq_ent_t) + 2 * sizeof(uint32_t) +
           L * (sizeof(float) * stride + 2 * sizeof(int64_t) +
                sizeof(rs_seq_meta_t));
}

/* ------------------------------------------ entity caches across restarts */

/* Layout (model.h "entity caches across restarts"), little-endian:
 *   header (48 B): "RSEC" | u32 format | u32 arch (rs_seq_record_arch, as
 *   learning records) | u32 dim | u32 d_model, history, layers, experts,
 *   top_k, expert_hidden, buckets | u32 entity count
 *   entities, least recently used first (re-inserting them in order at
 *   the LRU front rebuilds the list): u64 key | u32 n | i64 t[n] |
 *   f32 kv[n][stride] | u64 lpos[n] (learning-log position + 1, 0 none) |
 *   n x (f32 amount | u8 len, event id | u8 len, counterparty id)
 *   trailer (8 B): rs_hash64 (xxHash3) of everything before it
 * The ring position is not kept: the n events are written oldest first and
 * read back into slots 0..n-1 (head = n % L).  Scoring, explanations and
 * remember only see them through the view, oldest first, so nothing they
 * compute changes.  The dims and sizes are in the header (not only their
 * hash) so a mismatch can be named. */
#define RS_SEQ_CACHES_MAGIC   "RSEC"
#define RS_SEQ_CACHES_FORMAT  2u /* 1 had xin[n][pstride], not lpos */
#define RS_SEQ_CACHES_HDR     48
#define RS_SEQ_CACHES_TRAILER 8
#define RS_SEQ_CACHES_ENT     12 /* u64 key, u32 n */

static const char *const rs_seq_arch_names[7] = {
    "d_model", "history", "layers", "experts", "top_k", "expert_hidden",
    "buckets"};

static void rs_seq_arch_fields(const rs_seq_t *s, int64_t a[7]) {
    const rs_seq_conf_t *c = &s->conf.seq;
    a[0] = c->d_model;
    a[1] = c->history;
    a[2] = c->layers;
    a[3] = c->experts;
    a[4] = c->top_k;
    a[5] = c->expert_hidden;
    a[6] = c->buckets;
}

/* Fixed bytes of one cached event: time, k/v, lpos, amount, 2 lengths. */
static size_t rs_seq_caches_event(const rs_seq_t *s) {
    return 8 + 4 * (size_t)s->stride + 8 + 4 + 2;
}

static size_t rs_seq_id_len(const char *id) {
    return strnlen(id, RS_MODEL_ID_MAX - 1);
}

/* The partition of entity slot i: that of the learning record of its
 * newest cached event; -1 if it has none. */
static int32_t rs_seq_ent_part(const rs_seq_t *s, uint32_t i) {
    const rs_seq_ent_t *e = &s->ent[i];
    if (!e->n) return -1;
    uint32_t newest = (e->head + (uint32_t)s->L - 1) % (uint32_t)s->L;
    uint64_t lp1 = s->elpos[(size_t)i * s->L + newest];
    return lp1 ? RS_LPOS_PART(lp1 - 1) : -1;
}

static int rs_seq_sel(const rs_seq_t *s, uint32_t i, rs_seq_sel_cb *sel,
                      void *opaque) {
    return !sel || sel(opaque, s->ent[i].key, rs_seq_ent_part(s, i));
}

/* Bytes of entity slot i in the caches format. */
static size_t rs_seq_caches_ent_size(const rs_seq_t *s, uint32_t i) {
    const rs_seq_view_t v = rs_seq_ent_view(s, i);
    const rs_seq_meta_t *mt = s->emeta + (size_t)i * s->L;
    size_t n = RS_SEQ_CACHES_ENT + (size_t)v.n * rs_seq_caches_event(s);
    for (int j = 0; j < v.n; j++) {
        int sl = (v.start + j) % v.cap;
        n += rs_seq_id_len(mt[sl].id) + rs_seq_id_len(mt[sl].cp);
    }
    return n;
}

size_t rs_seq_caches_size_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                              void *opaque) {
    size_t n = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER;
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev)
        if (rs_seq_sel(s, (uint32_t)i, sel, opaque))
            n += rs_seq_caches_ent_size(s, (uint32_t)i);
    return n;
}

size_t rs_seq_caches_size(const rs_seq_t *s) {
    return rs_seq_caches_size_sel(s, NULL, NULL);
}

/* The caches format's header (magic, format, architecture), at buf. */
static uint8_t *rs_seq_caches_put_hdr(const rs_seq_t *s, uint8_t *buf) {
    int64_t a[7];
    rs_seq_arch_fields(s, a);
    uint8_t *p = buf;
    memcpy(p, RS_SEQ_CACHES_MAGIC, 4);
    p = rs_le_put32(p + 4, RS_SEQ_CACHES_FORMAT);
    p = rs_le_put32(p, rs_seq_record_arch(s));
    p = rs_le_put32(p, (uint32_t)s->dim);
    for (int k = 0; k < 7; k++) p = rs_le_put32(p, (uint32_t)a[k]);
    return p;
}

/* Entity slot i in the caches format (key, times, keys/values, log
 * positions, metadata), at p. */
static uint8_t *rs_seq_caches_put_ent(const rs_seq_t *s, uint32_t i,
                                      uint8_t *p) {
    const rs_seq_view_t v = rs_seq_ent_view(s, i);
    const rs_seq_meta_t *mt = s->emeta + (size_t)i * s->L;
    p = rs_le_put64(p, s->ent[i].key);
    p = rs_le_put32(p, (uint32_t)v.n);
    for (int j = 0; j < v.n; j++)
        p = rs_le_put64(p, (uint64_t)v.t[(v.start + j) % v.cap]);
    for (int j = 0; j < v.n; j++)
        p = rs_le_putf32s(p, v.kv + (size_t)((v.start + j) % v.cap) * s->stride,
                          (size_t)s->stride);
    const uint64_t *lp = s->elpos + (size_t)i * s->L;
    for (int j = 0; j < v.n; j++)
        p = rs_le_put64(p, lp[(v.start + j) % v.cap]);
    for (int j = 0; j < v.n; j++) {
        const rs_seq_meta_t *m = &mt[(v.start + j) % v.cap];
        p = rs_le_putf32s(p, &m->amount, 1);
        const char *str[2] = {m->id, m->cp};
        for (int k = 0; k < 2; k++) {
            size_t l = rs_seq_id_len(str[k]);
            *p++ = (uint8_t)l;
            memcpy(p, str[k], l);
            p += l;
        }
    }
    return p;
}

rs_err_t rs_seq_caches_write(const rs_seq_t *s, uint8_t *buf, size_t cap,
                             size_t *len) {
    return rs_seq_caches_write_sel(s, NULL, NULL, buf, cap, len);
}

rs_err_t rs_seq_caches_write_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                                 void *opaque, uint8_t *buf, size_t cap,
                                 size_t *len) {
    const size_t need = rs_seq_caches_size_sel(s, sel, opaque);
    *len = need;
    if (cap < need) return RS_ERR_TOOBIG;
    uint8_t *p = rs_seq_caches_put_hdr(s, buf);
    uint32_t count = 0;
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev)
        count += (uint32_t)rs_seq_sel(s, (uint32_t)i, sel, opaque);
    p = rs_le_put32(p, count);
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev) {
        if (!rs_seq_sel(s, (uint32_t)i, sel, opaque)) continue;
        p = rs_seq_caches_put_ent(s, (uint32_t)i, p);
    }
    rs_le_put64(p, rs_hash64(buf, (size_t)(p - buf)));
    return RS_OK;
}

rs_err_t rs_seq_caches_envelope(const uint8_t *b, size_t len, char *errstr,
                                size_t errstr_size) {
    const size_t env = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER;
    if (len >= 4 && memcmp(b, RS_SEQ_CACHES_MAGIC, 4))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: bad magic (not a cache buffer)");
    if (len < env)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: %zu bytes, shorter than their "
                       "envelope (%zu)", len, env);
    const uint32_t fmt = rs_le_get32(b + 4);
    if (fmt != RS_SEQ_CACHES_FORMAT)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: format version %u is not supported "
                       "(this build reads %u)", fmt, RS_SEQ_CACHES_FORMAT);
    const uint64_t want = rs_le_get64(b + len - RS_SEQ_CACHES_TRAILER);
    const uint64_t got = rs_hash64(b, len - RS_SEQ_CACHES_TRAILER);
    if (want != got)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: checksum mismatch (stored %016llx, "
                       "computed %016llx): truncated or damaged",
                       (unsigned long long)want, (unsigned long long)got);
    return RS_OK;
}

/* One entity of a cache buffer at b[*off .. end): checked (counts, lengths,
 * finite k/v/xin) and, if slot >= 0, copied into entity slot `slot` (not
 * indexed or linked: the caller's).  *off moves past it; *key gets its
 * key. */
static rs_err_t rs_seq_caches_ent(rs_seq_t *s, const uint8_t *b, size_t *off,
                                  size_t end, uint32_t e, int64_t slot,
                                  uint64_t *key, char *errstr,
                                  size_t errstr_size) {
    size_t o = *off;
    if (end - o < RS_SEQ_CACHES_ENT)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u is truncated", e);
    *key = rs_le_get64(b + o);
    const uint32_t n = rs_le_get32(b + o + 8);
    o += RS_SEQ_CACHES_ENT;
    if (n > (uint32_t)s->L)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u has %u cached events, the "
                       "history holds %d", e, n, s->L);
    const size_t nf = (size_t)n * (size_t)s->stride;
    const size_t fixed = 8 * (size_t)n + 4 * nf + 8 * (size_t)n;
    if (end - o < fixed)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u is truncated", e);
    const uint8_t *t = b + o, *kv = t + 8 * (size_t)n,
                  *lp = kv + 4 * nf;
    /* |t| <= 2^62: the gap to any event time in that range (the service's
     * are years 2000-2100) is an int64 without overflow */
    for (uint32_t j = 0; j < n; j++) {
        const uint64_t u = rs_le_get64(t + 8 * (size_t)j) + (1ull << 62);
        if (u > (1ull << 63))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u has an event time out "
                           "of range", e);
    }
    for (size_t i = 0; i < nf; i++) /* exponent all ones: inf or NaN */
        if ((rs_le_get32(kv + 4 * i) & 0x7f800000u) == 0x7f800000u)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u has a non-finite "
                           "key/value", e);
    o += fixed;
    const size_t base = slot >= 0 ? (size_t)slot * s->L : 0;
    for (uint32_t j = 0; j < n; j++) {
        rs_seq_meta_t *m = slot >= 0 ? &s->emeta[base + j] : NULL;
        if (end - o < 5)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u is truncated", e);
        if (m) {
            memset(m, 0, sizeof(*m));
            rs_le_getf32s(b + o, &m->amount, 1);
        }
        o += 4;
        for (int k = 0; k < 2; k++) {
            if (end - o < 1)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "entity caches: entity %u is truncated", e);
            const size_t l = b[o++];
            if (l >= RS_MODEL_ID_MAX || end - o < l)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "entity caches: entity %u: an id of %zu "
                               "bytes (max %d) or truncated",
                               e, l, RS_MODEL_ID_MAX - 1);
            if (m) memcpy(k ? m->cp : m->id, b + o, l);
            o += l;
        }
    }
    if (slot >= 0) {
        rs_seq_ent_t *en = &s->ent[slot];
        memset(en, 0, sizeof(*en));
        en->key = *key;
        en->prev = en->next = -1;
        en->n = n;
        en->head = n % (uint32_t)s->L;
        for (uint32_t j = 0; j < n; j++)
            s->et[base + j] = (int64_t)rs_le_get64(t + 8 * (size_t)j);
        rs_le_getf32s(kv, s->ekv + base * s->stride, (size_t)n * s->stride);
        for (uint32_t j = 0; j < n; j++)
            s->elpos[base + j] = rs_le_get64(lp + 8 * (size_t)j);
    }
    *off = o;
    return RS_OK;
}

static int rs_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two passes: everything is checked (and the keys collected to find a
 * repeat) before the caches are cleared and refilled, so an error leaves
 * them as they were. */
/* Everything of a cache buffer checked (envelope, architecture, every
 * entity, no key twice); *count gets the entities. */
static rs_err_t rs_seq_caches_check(rs_seq_t *s, const uint8_t *b, size_t len,
                                    uint32_t *count_out, char *errstr,
                                    size_t errstr_size) {
    rs_err_t err = rs_seq_caches_envelope(b, len, errstr, errstr_size);
    if (err) return err;
    const uint32_t dim = rs_le_get32(b + 12);
    if (dim != (uint32_t)s->dim)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches of %u features, this model has %d",
                       dim, s->dim);
    int64_t a[7];
    rs_seq_arch_fields(s, a);
    for (int i = 0; i < 7; i++) {
        uint32_t v = rs_le_get32(b + 16 + 4 * i);
        if ((int64_t)v != a[i])
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "entity caches from another architecture: "
                           "seq.%s is %u in the caches, %lld in this model",
                           rs_seq_arch_names[i], v, (long long)a[i]);
    }
    const uint32_t arch = rs_le_get32(b + 8);
    if (arch != rs_seq_record_arch(s))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches from another architecture (hash %08x, "
                       "this model's %08x)", arch, rs_seq_record_arch(s));
    const uint32_t count = rs_le_get32(b + 44);
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    if ((uint64_t)count * RS_SEQ_CACHES_ENT > end - RS_SEQ_CACHES_HDR)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: %u entities cannot fit in %zu bytes",
                       count, len);

    uint64_t *keys = rs_malloc(sizeof(uint64_t) * (count ? count : 1));
    size_t off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count && !err; e++)
        err = rs_seq_caches_ent(s, b, &off, end, e, -1, &keys[e], errstr,
                                errstr_size);
    if (!err && off != end)
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "entity caches: %zu bytes after the last of %u "
                      "entities", end - off, count);
    if (!err) {
        qsort(keys, count, sizeof(uint64_t), rs_u64_cmp);
        for (uint32_t e = 1; e < count && !err; e++)
            if (keys[e] == keys[e - 1])
                err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                              "entity caches: entity %016llx appears twice",
                              (unsigned long long)keys[e]);
    }
    rs_free(keys);
    *count_out = count;
    return err;
}

rs_err_t rs_seq_caches_read(rs_seq_t *s, const uint8_t *b, size_t len,
                            char *errstr, size_t errstr_size) {
    uint32_t count = 0;
    rs_err_t err = rs_seq_caches_check(s, b, len, &count, errstr, errstr_size);
    if (err) return err;
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    size_t off;

    /* replace: the least recently used first, each to the LRU front; more
     * than the pool holds: the oldest ones are skipped (evictions) */
    const uint32_t skip = count > s->ecap ? count - s->ecap : 0;
    memset(s->eindex, 0, sizeof(uint32_t) * ((size_t)s->emask + 1));
    s->lru_head = s->lru_tail = -1;
    s->eused = 0;
    s->evictions += skip;
    off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count; e++) {
        uint64_t key;
        int64_t slot = e < skip ? -1 : (int64_t)s->eused;
        err = rs_seq_caches_ent(s, b, &off, end, e, slot, &key, errstr,
                                errstr_size);
        if (err) return err; /* cannot: checked above */
        if (slot < 0) continue;
        s->eused++;
        rs_idx_insert(s->eindex, s->emask, key, (uint32_t)slot);
        rs_seq_lru_front(s, (uint32_t)slot);
    }
    return RS_OK;
}

/* Merge: each entity of the buffer replaces the cache of its key (or
 * takes a free slot, or the least recently used one), at the LRU front in
 * the buffer's order.  Checked whole first: on an error nothing changed. */
rs_err_t rs_seq_caches_merge(rs_seq_t *s, const uint8_t *b, size_t len,
                             uint64_t *n_out, char *errstr,
                             size_t errstr_size) {
    uint32_t count = 0;
    if (n_out) *n_out = 0;
    rs_err_t err = rs_seq_caches_check(s, b, len, &count, errstr, errstr_size);
    if (err) return err;
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    size_t off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count; e++) {
        uint64_t key = rs_le_get64(b + off);
        int64_t pos = rs_seq_ent_pos(s, key);
        uint32_t slot;
        int fresh = pos < 0;
        if (!fresh) {
            slot = s->eindex[pos] - 1;
            rs_seq_lru_unlink(s, slot);
        } else if (s->eused < s->ecap) {
            slot = s->eused++;
        } else {
            slot = (uint32_t)s->lru_tail;
            rs_seq_ent_unindex(s, (uint32_t)rs_seq_ent_pos(s, s->ent[slot].key));
            rs_seq_lru_unlink(s, slot);
            s->evictions++;
        }
        err = rs_seq_caches_ent(s, b, &off, end, e, slot, &key, errstr,
                                errstr_size);
        if (err) return err; /* cannot: checked above */
        if (fresh) rs_idx_insert(s->eindex, s->emask, key, slot);
        rs_seq_lru_front(s, slot);
    }
    if (n_out) *n_out = count;
    return RS_OK;
}

/* Move entity slot `from` to the free slot `to` (index, LRU links and
 * rows). */
static void rs_seq_ent_move(rs_seq_t *s, uint32_t from, uint32_t to) {
    int64_t pos = rs_seq_ent_pos(s, s->ent[from].key);
    s->ent[to] = s->ent[from];
    rs_seq_ent_t *e = &s->ent[to];
    if (e->prev >= 0) s->ent[e->prev].next = (int32_t)to;
    else s->lru_head = (int32_t)to;
    if (e->next >= 0) s->ent[e->next].prev = (int32_t)to;
    else s->lru_tail = (int32_t)to;
    if (pos >= 0) s->eindex[pos] = to + 1;
    const size_t L = (size_t)s->L, a = (size_t)to * L, f = (size_t)from * L;
    memcpy(s->ekv + a * s->stride, s->ekv + f * s->stride,
           L * s->stride * sizeof(float));
    memcpy(s->elpos + a, s->elpos + f, L * sizeof(*s->elpos));
    memcpy(s->et + a, s->et + f, L * sizeof(*s->et));
    memcpy(s->emeta + a, s->emeta + f, L * sizeof(*s->emeta));
}

uint64_t rs_seq_caches_drop(rs_seq_t *s, rs_seq_sel_cb *sel, void *opaque) {
    uint64_t n = 0;
    uint32_t i = 0;
    while (i < s->eused) {
        if (!rs_seq_sel(s, i, sel, opaque)) {
            i++;
            continue;
        }
        int64_t pos = rs_seq_ent_pos(s, s->ent[i].key);
        if (pos >= 0) rs_seq_ent_unindex(s, (uint32_t)pos);
        rs_seq_lru_unlink(s, i);
        uint32_t last = --s->eused;
        if (last != i) rs_seq_ent_move(s, last, i); /* i is seen again */
        memset(&s->ent[last], 0, sizeof(s->ent[last]));
        n++;
    }
    return n;
}

void rs_seq_caches_track_gone(rs_seq_t *s, uint32_t cap) {
    free(s->gone_key);
    free(s->gone_part);
    s->gone_key = cap ? rs_calloc(cap, sizeof(*s->gone_key)) : NULL;
    s->gone_part = cap ? rs_calloc(cap, sizeof(*s->gone_part)) : NULL;
    s->gone_cap = cap;
    s->ngone = 0;
}

int rs_seq_caches_gone_take(rs_seq_t *s, const uint64_t **keys,
                            const int32_t **parts, uint64_t *lost) {
    int n = (int)s->ngone;
    *keys = s->gone_key;
    *parts = s->gone_part;
    if (lost) {
        *lost = s->gone_lost;
        s->gone_lost = 0;
    }
    s->ngone = 0;
    return n;
}

static int rs_seq_sel_key(void *opaque, uint64_t key, int32_t partition) {
    const uint64_t *want = opaque; /* {key, partition} */
    return key == want[0] && (int64_t)partition == (int64_t)want[1];
}

int rs_seq_caches_drop_key(rs_seq_t *s, int32_t partition, uint64_t key) {
    int64_t pos = rs_seq_ent_pos(s, key);
    if (pos < 0) return 0;
    uint64_t want[2] = {key, (uint64_t)(int64_t)partition};
    uint32_t i = s->eindex[pos] - 1;
    if (!rs_seq_sel(s, i, rs_seq_sel_key, want)) return 0;
    rs_seq_ent_unindex(s, (uint32_t)pos);
    rs_seq_lru_unlink(s, i);
    uint32_t last = --s->eused;
    if (last != i) rs_seq_ent_move(s, last, i);
    memset(&s->ent[last], 0, sizeof(s->ent[last]));
    return 1;
}

/* One entity's cache in the rs_seq_caches_write format (count 1). */
rs_err_t rs_seq_caches_write_one(const rs_seq_t *s, uint64_t key, uint8_t *buf,
                                 size_t cap, size_t *len) {
    int64_t pos = rs_seq_ent_pos(s, key);
    *len = 0;
    if (pos < 0) return RS_ERR_NOTFOUND;
    const uint32_t i = s->eindex[pos] - 1;
    const size_t need = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER +
                        rs_seq_caches_ent_size(s, i);
    *len = need;
    if (cap < need) return RS_ERR_TOOBIG;
    uint8_t *p = rs_seq_caches_put_hdr(s, buf);
    p = rs_le_put32(p, 1);
    p = rs_seq_caches_put_ent(s, i, p);
    rs_le_put64(p, rs_hash64(buf, (size_t)(p - buf)));
    return RS_OK;
}
