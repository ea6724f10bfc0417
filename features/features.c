/* features.c -- the feature engine: key tables, rings, per-event compute.
 *
 * See features.h for the contract and docs/features.md for the semantics.
 * Invariants kept here:
 *  - every ring (events, labels) is sorted by time, ties in insertion
 *    order; a full ring drops its oldest entry, or the new one if it is
 *    older than all kept entries.  So a ring always holds the top-`cap`
 *    entries by (time, insertion order) of everything inserted since the
 *    key was created -- the brute-force reference in tests/features relies
 *    on exactly this;
 *  - a slot's key is 0 iff the slot is free;
 *  - the index tables use linear probing with backward-shift deletion (no
 *    tombstones);
 *  - before any slot or event-index entry is modified, rs_fe_touch_* is
 *    called (copy-before-write for an active checkpoint);
 *  - nothing here allocates after rs_features_new().
 */
#include "common/idx.h"
#include "common/tz.h"
#include "features/features_int.h"
#include "features/opcond.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_FE_SWEEP_STEP   4   /* slots checked for expiry per table per event */
#define RS_FE_EVICT_PROBE  8   /* slots compared when a pool is full          */
#define RS_FE_SINCE_NONE_S 1e8 /* "no previous event": 1e8 s (~3.2 years)      */
#define RS_FE_Z_CLIP 100.0
#define RS_FE_BASE_CLIP 50.0
#define RS_FE_2PI 6.283185307179586
#define RS_FE_AGG_LABEL_BITS                                                  \
    ((1u << RS_FEATURES_AGG_FRAUD_COUNT) | (1u << RS_FEATURES_AGG_FRAUD_RATE))
#define RS_FE_AGG_CAL_BITS                                                    \
    ((1u << RS_FEATURES_AGG_HOUR_OF_DAY) | (1u << RS_FEATURES_AGG_DAY_OF_WEEK) | \
     (1u << RS_FEATURES_AGG_NIGHT) | (1u << RS_FEATURES_AGG_WEEKEND) |        \
     (1u << RS_FEATURES_AGG_HOUR_SIN) | (1u << RS_FEATURES_AGG_HOUR_COS))

/* ------------------------------------------------------------ helpers */

static uint32_t rs_fe_pow2(uint64_t n) {
    uint64_t p = 1;
    while (p < n) p <<= 1;
    return (uint32_t)p;
}

static inline uint64_t rs_fe_key(const char *id) {
    uint64_t h = rs_hash_str(id);
    return h ? h : 1;
}

static inline uint32_t rs_fe_h32(const char *s) {
    uint64_t h = rs_hash_str(s);
    uint32_t c = (uint32_t)(h ^ (h >> 32));
    return c ? c : 1;
}

static inline int64_t rs_fe_time_of(const void *e) {
    int64_t t;
    memcpy(&t, e, sizeof(t));
    return t;
}

/* Insert element `e` (size esz, time first) into a time-sorted circular
 * ring.  Returns 0 if e was older than every entry of a full ring (not
 * kept), 1 if kept without loss, 2 if kept and the oldest was dropped.
 * Ties go after existing equal times. */
static int rs_fe_ring_insert(void *arr, size_t esz, uint32_t cap,
                             uint16_t *head, uint16_t *n, const void *e) {
    uint8_t *a = arr;
    int64_t et = rs_fe_time_of(e);
    int ret = 1;
#define RS_FE_AT(i) (a + (((size_t)*head + (i)) % cap) * esz)
    if (*n == cap) {
        if (et < rs_fe_time_of(RS_FE_AT(0))) return 0;
        *head = (uint16_t)((*head + 1) % cap);
        (*n)--;
        ret = 2;
    }
    uint32_t pos = *n;
    while (pos > 0 && rs_fe_time_of(RS_FE_AT(pos - 1)) > et) {
        memmove(RS_FE_AT(pos), RS_FE_AT(pos - 1), esz);
        pos--;
    }
    memcpy(RS_FE_AT(pos), e, esz);
    (*n)++;
#undef RS_FE_AT
    return ret;
}

/* ------------------------------------------------------------ tables */

static void rs_fe_tab_init(rs_fe_tab_t *tab, uint32_t cap) {
    tab->cap = cap;
    tab->used = 0;
    tab->pool = rs_aligned_calloc(cap, tab->slot_size);
    tab->seen = rs_aligned_calloc(cap, sizeof(int64_t));
    tab->mask = rs_fe_pow2((uint64_t)cap * 2) - 1;
    tab->index = rs_aligned_calloc((size_t)tab->mask + 1, sizeof(uint32_t));
    tab->freelist = rs_aligned_calloc(cap, sizeof(uint32_t));
    tab->ck_done = rs_aligned_calloc((cap + 63) / 64, sizeof(uint64_t));
    tab->part = rs_aligned_calloc(cap, sizeof(uint16_t));
}

/* Empty the table (all slots free).  The pool and the index are zeroed
 * lazily (rs_zero_lazy): at the default sizes they are hundreds of MB, and
 * touching them all at start delayed the first score by seconds. */
static void rs_fe_tab_clear(rs_fe_tab_t *tab, int fresh) {
    if (!fresh) { /* fresh: just from rs_aligned_calloc, already zero */
        rs_zero_lazy(tab->pool, (size_t)tab->cap * tab->slot_size);
        rs_zero_lazy(tab->index, ((size_t)tab->mask + 1) * sizeof(uint32_t));
    }
    for (uint32_t i = 0; i < tab->cap; i++) {
        tab->seen[i] = INT64_MAX;
        tab->freelist[i] = tab->cap - 1 - i;
    }
    if (!fresh) memset(tab->part, 0, (size_t)tab->cap * sizeof(uint16_t));
    tab->nfree = tab->cap;
    tab->used = 0;
    tab->cursor = 0;
}

static void rs_fe_tab_free(rs_fe_tab_t *tab) {
    rs_free(tab->pool);
    rs_free(tab->seen);
    rs_free(tab->index);
    rs_free(tab->freelist);
    rs_free(tab->ck_done);
    rs_free(tab->part);
}

/* Index position holding `key`, or -1. */
static uint64_t rs_fe_tab_key(const void *tab, uint32_t s) {
    return rs_fe_slot((const rs_fe_tab_t *)tab, s)->key;
}

static int64_t rs_fe_tab_pos(const rs_fe_tab_t *tab, uint64_t key) {
    return rs_idx_pos(tab->index, tab->mask, key, rs_fe_tab_key, tab);
}

int64_t rs_fe_tab_find(const rs_fe_tab_t *tab, uint64_t key) {
    int64_t pos = rs_fe_tab_pos(tab, key);
    return pos < 0 ? -1 : (int64_t)tab->index[pos] - 1;
}

/* Backward-shift deletion of index position i. */
static void rs_fe_tab_unindex(rs_fe_tab_t *tab, uint32_t i) {
    rs_idx_unindex(tab->index, tab->mask, i, rs_fe_tab_key, tab);
}

void rs_fe_tab_remove(rs_features_t *f, int t, uint32_t s) {
    rs_fe_tab_t *tab = &f->tab[t];
    rs_fe_touch_slot(f, t, s);
    rs_fe_hdr_t *h = rs_fe_slot(tab, s);
    int64_t pos = rs_fe_tab_pos(tab, h->key);
    if (pos >= 0) rs_fe_tab_unindex(tab, (uint32_t)pos);
    h->key = 0;
    tab->seen[s] = INT64_MAX;
    tab->part[s] = 0;
    tab->freelist[tab->nfree++] = s;
    tab->used--;
}

/* Take a free slot for `key` (not present; the pool must not be full).
 * The slot is zeroed and keyed. */
uint32_t rs_fe_tab_alloc(rs_fe_tab_t *tab, uint64_t key, uint64_t *evictions) {
    (void)evictions;
    uint32_t s = tab->freelist[--tab->nfree];
    rs_fe_hdr_t *h = rs_fe_slot(tab, s);
    memset(h, 0, sizeof(*h));
    if (tab->nbkt) /* no counter says which buckets are live: clear them */
        memset(rs_fe_bkts(tab, h), 0, tab->nbkt * sizeof(rs_fe_bkt_t));
    if (tab->nbase)
        memset(rs_fe_bases(tab, h), 0, tab->nbase * sizeof(rs_fe_base_t));
    h->key = key;
    h->slot = s;
    rs_idx_insert(tab->index, tab->mask, key, s);
    tab->used++;
    return s;
}

/* Changelog hook (issue 13): entity slot s of table t leaves by key_ttl or
 * eviction -- remembered for rs_features_ents_gone_take (a tombstone, so
 * a restore does not bring it back).  Not for drops and restores. */
static void rs_fe_ent_gone(rs_features_t *f, int t, uint32_t s) {
    rs_fe_tab_t *tab = &f->tab[t];
    if (t != f->ent_tab || !f->gent_cap || !tab->part[s]) return;
    if (f->ngent == f->gent_cap) {
        f->gent_lost++;
        return;
    }
    f->gent_key[f->ngent] = rs_fe_slot(tab, s)->key;
    f->gent_part[f->ngent++] = (int32_t)tab->part[s] - 1;
}

/* The live slot of `key`, or NULL.  A key idle for more than key_ttl is
 * removed here (and counted) so results never depend on the sweep. */
static rs_fe_hdr_t *rs_fe_get(rs_features_t *f, int t, uint64_t key) {
    rs_fe_tab_t *tab = &f->tab[t];
    int64_t s = rs_fe_tab_find(tab, key);
    if (s < 0) return NULL;
    if (f->wm - tab->seen[s] > f->conf.key_ttl) {
        rs_fe_ent_gone(f, t, (uint32_t)s);
        rs_fe_tab_remove(f, t, (uint32_t)s);
        f->st.expirations++;
        return NULL;
    }
    return rs_fe_slot(tab, (uint32_t)s);
}

static rs_fe_hdr_t *rs_fe_get_or_new(rs_features_t *f, int t, uint64_t key,
                                     int64_t now, int *is_new) {
    rs_fe_hdr_t *h = rs_fe_get(f, t, key);
    rs_fe_tab_t *tab = &f->tab[t];
    *is_new = 0;
    if (h) return h;
    if (!tab->nfree) {
        /* Pool full: evict the least recently seen of a bounded probe. */
        uint32_t best = tab->cursor % tab->cap;
        for (uint32_t k = 1; k < RS_FE_EVICT_PROBE && k < tab->cap; k++) {
            uint32_t s = (tab->cursor + k) % tab->cap;
            if (tab->seen[s] < tab->seen[best]) best = s;
        }
        tab->cursor = (tab->cursor + RS_FE_EVICT_PROBE) % tab->cap;
        rs_fe_ent_gone(f, t, best);
        rs_fe_tab_remove(f, t, best);
        f->st.evictions++;
    }
    uint32_t s = tab->freelist[tab->nfree - 1];
    rs_fe_touch_slot(f, t, s); /* free at begin: nothing to save */
    s = rs_fe_tab_alloc(tab, key, NULL);
    tab->seen[s] = now;
    *is_new = 1;
    return rs_fe_slot(tab, s);
}

/* Incremental expiry: a few pool slots per call. */
static void rs_fe_sweep(rs_features_t *f, int t) {
    rs_fe_tab_t *tab = &f->tab[t];
    for (int k = 0; k < RS_FE_SWEEP_STEP; k++) {
        uint32_t s = tab->cursor;
        tab->cursor = (tab->cursor + 1) % tab->cap;
        if (tab->seen[s] != INT64_MAX && f->wm - tab->seen[s] > f->conf.key_ttl) {
            rs_fe_ent_gone(f, t, s);
            rs_fe_tab_remove(f, t, s);
            f->st.expirations++;
        }
    }
}

/* ------------------------------------------------------- event index */

static uint64_t rs_fe_evidx_key(const void *x, uint32_t pos) {
    return ((const rs_fe_evidx_t *)x)->ring[pos].id;
}

static int64_t rs_fe_evidx_pos(const rs_fe_evidx_t *x, uint64_t id) {
    return rs_idx_pos(x->index, x->mask, id, rs_fe_evidx_key, x);
}

static void rs_fe_evidx_unindex(rs_fe_evidx_t *x, uint32_t i) {
    rs_idx_unindex(x->index, x->mask, i, rs_fe_evidx_key, x);
}

void rs_fe_evidx_index(rs_fe_evidx_t *x, uint32_t pos) {
    rs_idx_insert(x->index, x->mask, x->ring[pos].id, pos);
}

/* Ring position of event `id`, or -1. */
int64_t rs_fe_evidx_find(const rs_fe_evidx_t *x, uint64_t id) {
    int64_t pos = rs_fe_evidx_pos(x, id);
    return pos < 0 ? -1 : (int64_t)x->index[pos] - 1;
}

/* Append entry r at the head (newest end), pushing out the oldest when
 * full.  r->id must not be indexed yet. */
/* An index entry pushed out: remembered for rs_features_gone_take. */
static void rs_fe_gone(rs_features_t *f, const rs_fe_evref_t *r) {
    if (!f->gone_cap) return;
    if (f->ngone == f->gone_cap) {
        f->gone_lost++;
        return;
    }
    f->gone_id[f->ngone] = r->id;
    f->gone_part[f->ngone++] = (int32_t)r->part - 1;
}

void rs_fe_evidx_put(rs_features_t *f, const rs_fe_evref_t *r) {
    rs_fe_evidx_t *x = &f->evidx;
    if (x->n == x->cap) {
        int64_t old = rs_fe_evidx_pos(x, x->ring[x->head].id);
        if (old >= 0) rs_fe_evidx_unindex(x, (uint32_t)old);
        x->n--;
        rs_fe_gone(f, &x->ring[x->head]);
    }
    x->ring[x->head] = *r;
    rs_fe_evidx_index(x, x->head);
    x->head = (x->head + 1) % x->cap;
    x->n++;
}

/* Rebuild the index of the live range [head - n, head) (cold path). */
void rs_fe_evidx_rebuild(rs_fe_evidx_t *x) {
    memset(x->index, 0, ((size_t)x->mask + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < x->n; i++)
        rs_fe_evidx_index(x, (x->head + x->cap - x->n + i) % x->cap);
}

static void rs_fe_evidx_add(rs_features_t *f, uint64_t id, int64_t t,
                            const uint64_t *keys) {
    rs_fe_evidx_t *x = &f->evidx;
    int64_t pos = rs_fe_evidx_pos(x, id);
    if (pos >= 0) { /* redelivered id: refresh the route, keep the label */
        uint32_t rp = x->index[pos] - 1;
        rs_fe_touch_evid(f, rp);
        rs_fe_evref_t *r = &x->ring[rp];
        r->t = t;
        memcpy(r->keys, keys, sizeof(r->keys));
        r->part = (uint32_t)(f->cur_part + 1);
        return;
    }
    rs_fe_touch_evid(f, x->head);
    if (x->n == x->cap) { /* push out the oldest */
        int64_t old = rs_fe_evidx_pos(x, x->ring[x->head].id);
        if (old >= 0) rs_fe_evidx_unindex(x, (uint32_t)old);
        x->n--;
        rs_fe_gone(f, &x->ring[x->head]);
    }
    rs_fe_evref_t *r = &x->ring[x->head];
    r->id = id;
    r->t = t;
    memcpy(r->keys, keys, sizeof(r->keys));
    r->labelled = 0;
    r->part = (uint32_t)(f->cur_part + 1);
    rs_fe_evidx_index(x, x->head);
    x->head = (x->head + 1) % x->cap;
    x->n++;
}

/* ----------------------------------------------------------- new/destroy */

/* fresh: the tables were just allocated zeroed (rs_features_new): zeroing
 * them again would give back the pages the background prefault may already
 * have populated (common.h), and make it do them twice. */
static void rs_fe_reset_int(rs_features_t *f, int fresh) {
    for (int t = 0; t < f->ntab; t++) rs_fe_tab_clear(&f->tab[t], fresh);
    if (!fresh) {
        rs_zero_lazy(f->evidx.ring,
                     (size_t)f->evidx.cap * sizeof(rs_fe_evref_t));
        rs_zero_lazy(f->evidx.index,
                     ((size_t)f->evidx.mask + 1) * sizeof(uint32_t));
    }
    f->evidx.head = f->evidx.n = 0;
    f->wm = INT64_MIN;
    f->t0 = INT64_MAX;
    for (int t = 0; t < f->ntab; t++)
        memset(f->tab[t].fleet, 0, sizeof(f->tab[t].fleet));
    if (f->varied) memset(f->varied, 0, (size_t)f->dim);
    if (f->opc) rs_opcond_reset(f->opc);
    uint64_t mem = f->st.mem_bytes, slot = f->st.entity_slot_bytes;
    memset(&f->st, 0, sizeof(f->st));
    f->st.mem_bytes = mem;
    f->st.entity_slot_bytes = slot;
}

void rs_fe_reset(rs_features_t *f) { rs_fe_reset_int(f, 0); }

static rs_err_t rs_fe_check_conf(const rs_features_conf_t *c, char *errstr,
                                 size_t errstr_size) {
    int n;
    const rs_conf_field_t *fields = rs_features_conf_fields(&n);
    for (int i = 0; i < n; i++) {
        const rs_conf_field_t *fd = &fields[i];
        const char *p = (const char *)c + fd->offset;
        double v;
        if (fd->type == RS_CONF_INT || fd->type == RS_CONF_DURATION)
            v = (double)*(const int64_t *)p;
        else if (fd->type == RS_CONF_DOUBLE)
            v = *(const double *)p;
        else if (fd->type == RS_CONF_ENUM)
            v = *(const int *)p;
        else
            continue;
        if (fd->type == RS_CONF_ENUM) {
            if (v < 0 || v > 2)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.%s: bad value %g", fd->name, v);
            continue;
        }
        if (!isfinite(v) ||
            ((fd->min != 0 || fd->max != 0) && (v < fd->min || v > fd->max)))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.%s: %g is out of range [%g, %g]", fd->name,
                           v, fd->min, fd->max);
    }
    if (c->nspecs < 0 || c->nspecs > RS_FEATURES_MAX_SPECS || c->nextra < 0 ||
        c->nextra > RS_FEATURES_MAX_SPECS)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "features: bad spec count");
    return RS_OK;
}

rs_features_t *rs_features_new(const rs_features_conf_t *conf, char *errstr,
                               size_t errstr_size) {
    rs_features_t *f = NULL;
    if (!conf) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "features: no configuration");
        return NULL;
    }
    if (rs_fe_check_conf(conf, errstr, errstr_size)) return NULL;

    f = rs_calloc(1, sizeof(*f));
    f->conf = *conf;
    f->conf.sensor_fields[sizeof(f->conf.sensor_fields) - 1] = '\0';
    f->conf.nouns[sizeof(f->conf.nouns) - 1] = '\0';
    f->ck.fd = -1;
    f->cur_part = -1;
    f->conf.timezone[sizeof(f->conf.timezone) - 1] = '\0';
    if (rs_fe_compile(f, errstr, errstr_size)) goto fail;
    {
        char why[400];
        f->tz = rs_tz_load(f->conf.timezone, why, sizeof(why));
        if (!f->tz) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "features.timezone: %s",
                    why);
            goto fail;
        }
        f->tz_from = INT64_MAX;   /* empty cache */
        f->tz_until = INT64_MIN;
    }
    if (rs_fe_words_new(f, errstr, errstr_size)) goto fail;
    if (rs_fe_opcond_new(f, errstr, errstr_size)) goto fail;

    uint64_t mem = sizeof(*f) +
                   (uint64_t)f->dim * (sizeof(*f->names) + sizeof(*f->descs));
    for (int t = 0; t < f->ntab; t++) {
        rs_fe_tab_t *tb = &f->tab[t];
        uint32_t cap = (uint32_t)(t == f->ent_tab ? conf->max_keys
                                                  : conf->max_counterparties);
        rs_fe_tab_init(tb, cap);
        mem += (uint64_t)cap * (tb->slot_size + 8 + 4) +
               ((uint64_t)tb->mask + 1) * 4 + cap / 8;
    }
    f->evidx.cap = (uint32_t)conf->label_index;
    f->evidx.ring = rs_aligned_calloc(f->evidx.cap, sizeof(rs_fe_evref_t));
    f->evidx.mask = rs_fe_pow2((uint64_t)f->evidx.cap * 2) - 1;
    f->evidx.index =
        rs_aligned_calloc((size_t)f->evidx.mask + 1, sizeof(uint32_t));
    f->evidx.ck_done =
        rs_aligned_calloc((f->evidx.cap + 63) / 64, sizeof(uint64_t));
    mem += (uint64_t)f->evidx.cap * sizeof(rs_fe_evref_t) +
           ((uint64_t)f->evidx.mask + 1) * 4;

    f->sel = rs_aligned_calloc((size_t)f->maxhist + 2, sizeof(uint32_t));
    f->dif = rs_aligned_calloc((size_t)f->maxhist + 2, sizeof(double));
    f->dmask = rs_fe_pow2((uint64_t)(f->maxhist + 1) * 2) - 1;
    f->dset_key = rs_aligned_calloc((size_t)f->dmask + 1, sizeof(uint32_t));
    f->dset_gen = rs_aligned_calloc((size_t)f->dmask + 1, sizeof(uint32_t));
    mem += ((uint64_t)f->dmask + 1) * 8;

    f->first = rs_calloc((size_t)f->dim + 1, sizeof(*f->first));
    f->varied = rs_calloc((size_t)f->dim + 1, 1);
    f->st.mem_bytes = mem;
    f->st.entity_slot_bytes =
        f->ent_tab >= 0 ? f->tab[f->ent_tab].slot_size : 0;
    rs_fe_reset_int(f, 1);
    return f;

fail:
    rs_features_destroy(f);
    return NULL;
}

rs_err_t rs_features_conf_mem(const rs_features_conf_t *conf,
                              rs_mem_item_t *items, int max, int *n,
                              int *dim, char *errstr, size_t errstr_size) {
    *n = 0;
    if (!conf || max < 3)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "features: no configuration or room");
    if (rs_fe_check_conf(conf, errstr, errstr_size)) return RS_ERR_CONFIG;
    rs_features_t *f = rs_calloc(1, sizeof(*f));
    f->conf = *conf;
    f->ck.fd = -1;
    if (rs_fe_compile(f, errstr, errstr_size)) {
        rs_features_destroy(f);
        return RS_ERR_CONFIG;
    }
    /* The same sizes as rs_features_new and rs_fe_tab_init. */
    uint64_t tab[2] = {0, 0};
    for (int t = 0; t < f->ntab; t++) {
        const rs_fe_tab_t *tb = &f->tab[t];
        uint64_t cap = (uint64_t)(t == f->ent_tab ? conf->max_keys
                                                  : conf->max_counterparties);
        tab[t == f->ent_tab ? 0 : 1] +=
            cap * (tb->slot_size + 8 + 4) + rs_fe_pow2(cap * 2) * 4 + cap / 8;
    }
    uint64_t ev = (uint64_t)conf->label_index;
    items[(*n)++] = (rs_mem_item_t){"features.max_keys", tab[0]};
    items[(*n)++] = (rs_mem_item_t){"features.max_counterparties", tab[1]};
    items[(*n)++] = (rs_mem_item_t){
        "features.label_index",
        ev * sizeof(rs_fe_evref_t) + rs_fe_pow2(ev * 2) * 4 + ev / 8};
    *dim = f->dim;
    rs_features_destroy(f);
    return RS_OK;
}

void rs_features_destroy(rs_features_t *f) {
    if (!f) return;
    if (f->ck.active) rs_features_checkpoint_abort(f);
    for (int t = 0; t < f->ntab; t++)
        if (f->tab[t].pool) rs_fe_tab_free(&f->tab[t]);
    rs_free(f->evidx.ring);
    rs_free(f->evidx.index);
    rs_free(f->evidx.ck_done);
    rs_free(f->sel);
    rs_free(f->dif);
    rs_free(f->dset_key);
    rs_free(f->dset_gen);
    rs_free(f->names);
    rs_free(f->descs);
    rs_free(f->out_spec);
    rs_free(f->out_agg);
    rs_free(f->first);
    rs_free(f->varied);
    rs_tz_destroy(f->tz);
    rs_fe_words_destroy(f->words);
    rs_opcond_destroy(f->opc);
    free(f->gone_id);
    free(f->gone_part);
    free(f->gent_key);
    free(f->gent_part);
    rs_free(f);
}

int rs_features_dim(const rs_features_t *f) { return f->dim; }

const char *rs_features_name(const rs_features_t *f, int i) {
    return i >= 0 && i < f->dim ? f->names[i] : NULL;
}

const char *rs_features_desc(const rs_features_t *f, int i) {
    return i >= 0 && i < f->dim ? f->descs[i] : NULL;
}

uint64_t rs_features_fingerprint(const rs_features_t *f) {
    return f->fingerprint;
}

/* ---------------------------------------------------------------- process */

/* Value of numeric field `name`, or NAN. */
static double rs_fe_numeric(const rs_event_t *ev, const char *name) {
    for (int i = 0; i < ev->n_numeric && i < RS_MAX_NUMERIC; i++)
        if (!strcmp(ev->numeric[i].name, name)) return ev->numeric[i].value;
    return NAN;
}

/* The event's text for a key/aux field, or NULL if absent/empty. */
static const char *rs_fe_text(const rs_event_t *ev, rs_fe_kind_t k,
                              const char *name) {
    const char *s = NULL;
    switch (k) {
    case RS_FE_K_ENTITY: s = ev->entity_id; break;
    case RS_FE_K_COUNTERPARTY: s = ev->counterparty_id; break;
    case RS_FE_K_TYPE: s = ev->type; break;
    default: s = rs_event_categ(ev, name); break;
    }
    return s && *s ? s : NULL;
}

/* Add h to the distinct set; 1 if it was new. */
static int rs_fe_dset_add(rs_features_t *f, uint32_t h) {
    uint32_t i = (h * 0x9e3779b1u) & f->dmask;
    while (f->dset_gen[i] == f->dgen) {
        if (f->dset_key[i] == h) return 0;
        i = (i + 1) & f->dmask;
    }
    f->dset_gen[i] = f->dgen;
    f->dset_key[i] = h;
    return 1;
}

/* The part of a window of width W ending at `end` that the state covers
 * (it began at t0): velocities are events per hour of THAT part, so they
 * do not ramp up while the state fills (a cold start, a new stream).  At
 * least W / 30 (and 1 ms), so the first minutes do not extrapolate wildly;
 * W when the start is unknown. */
static inline int64_t rs_fe_covered(const rs_features_t *f, int64_t end,
                                    int64_t W) {
    int64_t cov = W;
    if (f->t0 != INT64_MIN && f->t0 != INT64_MAX && end - W < f->t0)
        cov = end - f->t0;
    int64_t lo = W / 30 > 0 ? W / 30 : 1;
    return cov < lo ? lo : cov > W ? W : cov;
}

typedef struct rs_fe_cur_s {
    uint64_t key;                           /* 0: event has no such key */
    rs_fe_hdr_t *h;                         /* slot, NULL if no key */
    uint8_t item[8 + 4 * (RS_FEATURES_MAX_VALUES + RS_FEATURES_MAX_AUX)];
} rs_fe_cur_t;

static inline float rs_fe_item_v(const uint8_t *it, int vi) {
    float v;
    memcpy(&v, it + 8 + 4 * (size_t)vi, sizeof(v));
    return v;
}

static inline uint32_t rs_fe_item_a(const rs_fe_tab_t *tb, const uint8_t *it,
                                    int ai) {
    uint32_t a;
    memcpy(&a, it + 8 + 4 * (size_t)(tb->nv + ai), sizeof(a));
    return a;
}

/* A bucketed spec: the whole buckets ending at or before t - offset, W
 * long: buckets j in [e - W/B + 1, e], e = floor((t - offset) / B) - 1. */
static void rs_fe_bucket_eval(const rs_features_t *f, const rs_fe_cspec_t *c,
                              rs_fe_hdr_t *h, int64_t t, float *out) {
    const rs_fe_tab_t *tb = &f->tab[c->tab];
    const rs_features_spec_t *s = &c->s;
    const int64_t B = tb->bkt_ms;
    uint64_t n = 0, nv = 0, fr = 0;
    double sum = 0;
    if (h) {
        const rs_fe_bkt_t *bk = rs_fe_bkts(tb, h);
        int64_t e = rs_fe_floordiv(t - s->offset_ms, B) - 1;
        int64_t j = e - s->window_ms / B + 1;
        if (j < 0) j = 0;
        const int64_t j0 = j;
        /* one modulo, then walk the ring (no division per bucket) */
        uint32_t q = (uint32_t)(j % tb->nbkt);
        for (; j <= e; j++, q = q + 1 == tb->nbkt ? 0 : q + 1) {
            const rs_fe_bkt_t *b = &bk[q];
            if (b->b1 != j + 1) continue;
            n += b->n;
            nv += b->nv;
            fr += b->fraud;
            sum += b->sum;
        }
        /* labels applied before their arrival time (a labels topic read
         * ahead of the events) count only for events after it: take out
         * those of the newest by arrival that arrived at or after t */
        if (fr && (s->aggs & RS_FE_AGG_LABEL_BITS)) {
            const rs_fe_lab_t *rc = rs_fe_recs(tb, h);
            uint32_t q2 = (h->rec_head + (uint32_t)h->rec_n + tb->nrec - 1) % tb->nrec;
            for (uint32_t k = 0; k < h->rec_n;
                 k++, q2 = q2 ? q2 - 1 : tb->nrec - 1) {
                if (rc[q2].et < t) break;        /* .et holds the arrival */
                int64_t jb = rs_fe_floordiv(rc[q2].arr, B);
                if (jb < j0 || jb > e) continue;
                if (bk[jb % tb->nbkt].b1 == jb + 1 && fr) fr--;
            }
        }
    }
    for (int k = 0; k < c->nout; k++) {
        double o = 0;
        switch (c->agg[k]) {
        case RS_FEATURES_AGG_COUNT: o = (double)n; break;
        case RS_FEATURES_AGG_SUM: o = sum; break;
        case RS_FEATURES_AGG_MEAN: o = nv ? sum / (double)nv : 0; break;
        case RS_FEATURES_AGG_VELOCITY:
            o = (double)n * (double)RS_FE_HOUR_MS /
                (double)rs_fe_covered(f, t - s->offset_ms, s->window_ms);
            break;
        case RS_FEATURES_AGG_FRAUD_COUNT: o = (double)fr; break;
        case RS_FEATURES_AGG_FRAUD_RATE:
            o = n ? (fr >= n ? 1.0 : (double)fr / (double)n) : 0;
            break;
        default: break;
        }
        out[k] = (float)o;
    }
}

/* The baseline of value vi of slot h (NULL: a key never seen): its own
 * running statistics, topped up to baseline_prior readings with the
 * fleet's (pooled: the fleet's mean and variance as pseudo-readings),
 * without the readings `ex` (may be NULL) summarises.  0 if there is
 * nothing to compare with. */
static int rs_fe_baseline(const rs_features_t *f, const rs_fe_tab_t *tb,
                          rs_fe_hdr_t *h, int vi, const rs_fe_base_t *ex,
                          double *mean, double *sd) {
    const rs_fe_base_t *fl = &tb->fleet[vi];
    rs_fe_base_t own = {0, 0, 0};
    if (h) own = rs_fe_bases(tb, h)[vi];
    if (ex && ex->n > 0) {
        /* take out the readings being compared (the window's): the
         * baseline is the life BEFORE them, so a drift does not raise its
         * own yardstick */
        double n2 = own.n - ex->n;
        if (n2 < 0.5) {
            own.n = own.mean = own.m2 = 0;
        } else {
            double m2n = (own.n * own.mean - ex->n * ex->mean) / n2;
            double d = m2n - ex->mean;
            own.m2 = own.m2 - ex->m2 - n2 * ex->n / own.n * d * d;
            if (own.m2 < 0) own.m2 = 0;
            own.mean = m2n;
            own.n = n2;
        }
    }
    /* topped up to baseline_prior readings with the fleet's: a new key
     * is scored against the fleet, an established one against itself */
    double n = own.n, k = fl->n > 0 ? (double)f->conf.baseline_prior - n : 0;
    if (k < 0) k = 0;
    if (k > fl->n) k = fl->n;
    double N = n + k;
    if (N <= 0) return 0;
    double fm = fl->n > 0 ? fl->mean : 0, fv = fl->n > 0 ? fl->m2 / fl->n : 0;
    *mean = (n * own.mean + k * fm) / N;
    double d = own.mean - fm;
    double m2 = own.m2 + k * fv + (n > 0 && k > 0 ? n * k / N * d * d : 0);
    *sd = m2 > 0 ? sqrt(m2 / N) : 0;
    return 1;
}

static inline void rs_fe_welford(rs_fe_base_t *b, double v) {
    b->n += 1;
    double d = v - b->mean;
    b->mean += d / b->n;
    b->m2 += d * (v - b->mean);
    if (b->m2 < 0) b->m2 = 0;
}

/* Whether the baseline of value vi of slot h learns reading v
 * (features.baseline_limit): not if v is more than the limit's sds from
 * the baseline the key is scored against (its own, topped up with the
 * fleet's).  A reading the machine is judged out of range by does not
 * move the yardstick it is judged by -- the control chart's rule (limits
 * from in-control readings) -- so a step or a fault stays as far from the
 * baseline as it is for as long as it lasts, where a baseline learning
 * every reading absorbs it (35 h of a 5-sd step in a 5-day life take the
 * reading's z from 5 to 1.4).  A slow drift is learned until it leaves
 * the range; a permanent change of level without a repair label stays
 * out of range (rs_features_reset starts a new life).
 *
 * Phase I (features.baseline_learn_first): the life's first readings are
 * all learned.  A young baseline's sd is that of a short stretch (part
 * of a daily cycle, one load): judging by it would refuse the machine's
 * ordinary range and keep the sd too small for days (measured: healthy
 * readings in alert 2.6 -> 4.6-5.2 % on the mixed stream without it).
 * A baseline with no spread yet (sd 0) learns everything too. */
static inline int rs_fe_learns(const rs_features_t *f, const rs_fe_tab_t *tb,
                               rs_fe_hdr_t *h, int vi, double v) {
    const double lim = f->conf.baseline_limit;
    double bm, bsd;
    if (!(lim > 0) ||
        (h && rs_fe_bases(tb, h)[vi].n < (double)f->conf.baseline_learn_first) ||
        !rs_fe_baseline(f, tb, h, vi, NULL, &bm, &bsd) || !(bsd > 0))
        return 1;
    return fabs(v - bm) <= lim * bsd;
}

/* The window's kept readings that its key's baseline learned (to take
 * them out of it: rs_fe_baseline's ex), into ex (h may be NULL).  Which ones were learned
 * is judged against the baseline as it is now rather than as it was at
 * each reading's arrival (not kept): the same readings unless the
 * baseline moved by a sizeable part of its sd within the window, which
 * is what the limit prevents; a mismatch only misplaces the few readings
 * at the limit. */
static void rs_fe_window_learned(const rs_features_t *f, const rs_fe_tab_t *tb,
                                 rs_fe_hdr_t *h, int vi, const uint8_t *items,
                                 size_t isz, int nsel, rs_fe_base_t *ex) {
    const double lim = f->conf.baseline_limit;
    double bm = 0, bsd = 0;
    /* still in Phase I when the window's oldest reading came (the life
     * had at most n - nsel readings then): all of them taken as learned */
    int judge = lim > 0 && tb->nbase && h &&
                rs_fe_bases(tb, h)[vi].n - nsel >= (double)f->conf.baseline_learn_first &&
                rs_fe_baseline(f, tb, h, vi, NULL, &bm, &bsd) && bsd > 0;
    for (int i = 0; i < nsel; i++) {
        double v = rs_fe_item_v(items + (size_t)f->sel[i] * isz, vi);
        if (isfinite(v) && (!judge || fabs(v - bm) <= lim * bsd))
            rs_fe_welford(ex, v);
    }
}

/* The median of a[0..n) (n >= 1; a is reordered): quickselect, no
 * allocation.  Even n: the mean of the two middle values. */
static double rs_fe_median(double *a, int n) {
    int k = n / 2, lo = 0, hi = n - 1;
    while (lo < hi) {
        double piv = a[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                double tmp = a[i];
                a[i++] = a[j];
                a[j--] = tmp;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    double m = a[k];
    if (n % 2 == 0) { /* the largest of a[0..k): the lower middle */
        double lm = a[0];
        for (int i = 1; i < k; i++)
            if (a[i] > lm) lm = a[i];
        m = 0.5 * (m + lm);
    }
    return m;
}

/* Compute the features of spec c for the event at t into out[c->nout]. */
static void rs_fe_spec_eval(rs_features_t *f, const rs_fe_cspec_t *c,
                            const rs_fe_cur_t *cur, int64_t t, float *out) {
    const rs_fe_tab_t *tb = &f->tab[c->tab];
    const rs_features_spec_t *s = &c->s;
    const uint8_t *ci = cur->item;
    const double x = rs_fe_item_v(ci, c->vi);
    const uint32_t cx = c->ai >= 0 ? rs_fe_item_a(tb, ci, c->ai) : 0;
    int nsel = 0;
    rs_fe_hdr_t *h = cur->h;
    if (s->aggs & RS_FE_AGG_CAL_BITS) { /* the event's own time only */
        for (int k = 0; k < c->nout; k++) {
            double o = 0;
            switch (c->agg[k]) {
            case RS_FEATURES_AGG_HOUR_OF_DAY: o = floor(f->cal_hour); break;
            case RS_FEATURES_AGG_DAY_OF_WEEK: o = f->cal_dow; break;
            case RS_FEATURES_AGG_NIGHT: o = f->cal_hour < 6.0; break;
            case RS_FEATURES_AGG_WEEKEND: o = f->cal_dow >= 5; break;
            case RS_FEATURES_AGG_HOUR_SIN: o = sin(RS_FE_2PI * f->cal_hour / 24); break;
            case RS_FEATURES_AGG_HOUR_COS: o = cos(RS_FE_2PI * f->cal_hour / 24); break;
            default: continue;  /* not calendar: computed below */
            }
            out[k] = (float)o;
        }
        if (!(s->aggs & ~RS_FE_AGG_CAL_BITS)) return;
    }
    if (!cur->key) { /* the event has no such key: all zero */
        for (int k = 0; k < c->nout; k++)
            if (!((RS_FE_AGG_CAL_BITS >> c->agg[k]) & 1)) out[k] = 0;
        return;
    }
    if (s->bucket_ms) {
        rs_fe_bucket_eval(f, c, h, t, out);
        return;
    }
    /* select: newest first */
    const uint8_t *items = h ? rs_fe_items(tb, h) : NULL;
    const uint32_t cap = tb->hist, isz = (uint32_t)tb->item_size;
    const int64_t off = s->offset_ms, W = s->window_ms;
    int64_t newest = INT64_MIN, oldest = INT64_MAX;
    if (h && h->ev_n && (c->need & RS_FE_NEED_SCAN)) {
        /* newest first; p walks the circular ring backwards without '%' */
        uint32_t p = (h->ev_head + (uint32_t)h->ev_n - 1) % cap;
        for (int i = (int)h->ev_n - 1; i >= 0; i--, p = p ? p - 1 : cap - 1) {
            int64_t st = rs_fe_time_of(items + (size_t)p * isz);
            if (st > t) continue;
            if (s->last_n) {
                if (nsel == s->last_n) break;
            } else {
                int64_t d = t - st;
                if (d < off) continue;
                if (W && d > off + W) break;   /* [t - off - W, t - off] */
            }
            f->sel[nsel++] = p;
            if (newest == INT64_MIN) newest = st;
            oldest = st;
        }
    }
    int incl = s->include_current && off == 0;
    int cnt = nsel + incl, nv = 0, below = 0, distinct = 0, seen = 0;
    double sum = 0, mn = INFINITY, mx = -INFINITY, last = 0;
    int have_last = 0;
    uint32_t need_aux = c->ai >= 0;
    if (need_aux && ++f->dgen == 0) {
        memset(f->dset_gen, 0, ((size_t)f->dmask + 1) * sizeof(uint32_t));
        f->dgen = 1;
    }
    const int need_vals = (c->need & RS_FE_NEED_VALUES) != 0;
    for (int i = 0; i < cnt && (need_vals || need_aux); i++) {
        const uint8_t *it = i < nsel ? items + (size_t)f->sel[i] * isz : ci;
        double v = rs_fe_item_v(it, c->vi);
        if (need_aux) {
            uint32_t a = rs_fe_item_a(tb, it, c->ai);
            if (a) {
                distinct += rs_fe_dset_add(f, a);
                if (i < nsel && a == cx) seen = 1;
            }
        }
        if (!need_vals || !isfinite(v)) continue;
        if (!have_last && i < nsel) { last = v; have_last = 1; }
        nv++;
        sum += v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        if (v < s->below) below++;
    }
    double mean = nv ? sum / nv : 0, sd = 0, slope = 0;
    if (nv && (s->aggs & ((1u << RS_FEATURES_AGG_STD) |
                          (1u << RS_FEATURES_AGG_ZSCORE) |
                          (1u << RS_FEATURES_AGG_BASE_SPREAD)))) {
        double ss = 0;
        for (int i = 0; i < cnt; i++) {
            const uint8_t *it = i < nsel ? items + (size_t)f->sel[i] * isz : ci;
            double v = rs_fe_item_v(it, c->vi);
            if (isfinite(v)) ss += (v - mean) * (v - mean);
        }
        sd = sqrt(ss / nv);
    }
    if (nv >= 2 && (s->aggs & (1u << RS_FEATURES_AGG_SLOPE))) {
        double tm = 0;
        for (int i = 0; i < cnt; i++) {
            const uint8_t *it = i < nsel ? items + (size_t)f->sel[i] * isz : ci;
            if (isfinite(rs_fe_item_v(it, c->vi)))
                tm += (double)(rs_fe_time_of(it) - t) / RS_FE_HOUR_MS;
        }
        tm /= nv;
        double sxy = 0, sxx = 0;
        for (int i = 0; i < cnt; i++) {
            const uint8_t *it = i < nsel ? items + (size_t)f->sel[i] * isz : ci;
            double v = rs_fe_item_v(it, c->vi);
            if (!isfinite(v)) continue;
            double dt = (double)(rs_fe_time_of(it) - t) / RS_FE_HOUR_MS - tm;
            sxy += dt * (v - mean);
            sxx += dt * dt;
        }
        if (sxx > 0) slope = sxy / sxx;
    }
    int fc = 0;
    if (h && (s->aggs & RS_FE_AGG_LABEL_BITS)) {
        const rs_fe_lab_t *lab = rs_fe_labs(tb, h);
        for (uint32_t i = 0, q = h->lab_head; i < h->lab_n;
             i++, q = q + 1 == tb->nlab ? 0 : q + 1) {
            const rs_fe_lab_t *l = &lab[q];
            if (l->et > t) break;
            int64_t d = t - l->et;
            if (d < off || d > off + W) continue;
            if (l->arr + s->label_delay_ms < t) fc++;
        }
    }
    const int xok = isfinite(x);
    for (int k = 0; k < c->nout; k++) {
        double o = 0;
        switch (c->agg[k]) {
        case RS_FEATURES_AGG_COUNT: o = cnt; break;
        case RS_FEATURES_AGG_SUM: o = sum; break;
        case RS_FEATURES_AGG_MEAN: o = mean; break;
        case RS_FEATURES_AGG_STD: o = sd; break;
        case RS_FEATURES_AGG_MIN: o = nv ? mn : 0; break;
        case RS_FEATURES_AGG_MAX: o = nv ? mx : 0; break;
        case RS_FEATURES_AGG_COUNT_BELOW: o = below; break;
        case RS_FEATURES_AGG_DISTINCT: o = distinct; break;
        case RS_FEATURES_AGG_NEW: o = cx && !seen ? 1 : 0; break;
        case RS_FEATURES_AGG_SINCE_LAST:
            o = log1p(newest == INT64_MIN ? RS_FE_SINCE_NONE_S
                                          : (double)(t - newest) / 1000.0);
            break;
        case RS_FEATURES_AGG_RATIO_MEAN:
            if (!xok) o = 0;
            else if (!nv) o = 1;
            else o = fabs(mean + 1) > 1e-12 ? (x + 1) / (mean + 1) : 0;
            break;
        case RS_FEATURES_AGG_ZSCORE:
            if (xok && nv >= 2) {
                o = (x - mean) / (sd + 0.01 * fabs(mean) + 0.01);
                if (o > RS_FE_Z_CLIP) o = RS_FE_Z_CLIP;
                if (o < -RS_FE_Z_CLIP) o = -RS_FE_Z_CLIP;
            }
            break;
        case RS_FEATURES_AGG_VELOCITY:
            if (W) o = cnt * (double)RS_FE_HOUR_MS /
                       (double)rs_fe_covered(f, t - off, W);
            else if (cnt) {
                int64_t span = nsel ? t - oldest : 0;
                if (span < RS_FE_MIN_MS) span = RS_FE_MIN_MS;
                o = cnt * (double)RS_FE_HOUR_MS / (double)span;
            }
            break;
        case RS_FEATURES_AGG_FRAUD_COUNT: o = fc; break;
        case RS_FEATURES_AGG_FRAUD_RATE:
            o = cnt ? (fc >= cnt ? 1.0 : (double)fc / cnt) : 0;
            break;
        case RS_FEATURES_AGG_LAST: o = have_last ? last : 0; break;
        case RS_FEATURES_AGG_SLOPE: o = slope; break;
        case RS_FEATURES_AGG_DEVIATION: o = xok && nv ? x - mean : 0; break;
        case RS_FEATURES_AGG_CURRENT: o = xok ? x : 0; break;
        case RS_FEATURES_AGG_CURRENT_LOG1P: o = xok ? log1p(x > 0 ? x : 0) : 0; break;
        case RS_FEATURES_AGG_BASE_DEV:
        case RS_FEATURES_AGG_BASE_Z: {
            const int win = s->last_n || W;
            double level = win ? mean : x, bm, bsd;
            int ok = win ? nv > 0 : xok;
            rs_fe_base_t ex = {0, 0, 0};
            if (win) /* the window's kept readings */
                rs_fe_window_learned(f, tb, h, c->vi, items, isz, nsel, &ex);
            if (!ok || !tb->nbase ||
                !rs_fe_baseline(f, tb, h, c->vi, &ex, &bm, &bsd))
                break;
            if (c->agg[k] == RS_FEATURES_AGG_BASE_DEV) {
                o = level - bm;
            } else if (bsd > 0) {
                o = (level - bm) / bsd;
                if (o > RS_FE_BASE_CLIP) o = RS_FE_BASE_CLIP;
                if (o < -RS_FE_BASE_CLIP) o = -RS_FE_BASE_CLIP;
            }
            break;
        }
        case RS_FEATURES_AGG_LIFE:
            o = h && tb->nbase ? log1p(rs_fe_bases(tb, h)[c->vi].n) : 0;
            break;
        case RS_FEATURES_AGG_BASE_SPREAD: {
            /* the window's spread in units of the machine's own: a level
             * feature cannot see noise growing around a steady mean.  A
             * log ratio: 0 when as usual whatever the sensor's scale,
             * symmetric for quieter/noisier, so it adds an input of the
             * same size as the others instead of a raw std whose scale
             * and machine-to-machine offset the model must first learn
             * away.  The baseline is the life before the window. */
            rs_fe_base_t ex = {0, 0, 0};
            rs_fe_window_learned(f, tb, h, c->vi, items, isz, nsel, &ex);
            double bm, bsd;
            if (nv < 2 || !tb->nbase ||
                !rs_fe_baseline(f, tb, h, c->vi, &ex, &bm, &bsd) || !(bsd > 0))
                break;
            const double lim = log(RS_FE_BASE_CLIP);
            o = sd > 0 ? log(sd / bsd) : -lim;
            if (o > lim) o = lim;
            if (o < -lim) o = -lim;
            break;
        }
        case RS_FEATURES_AGG_BASE_NOISE: {
            /* the noise alone, and only when it grew: a difference of
             * successive readings
             * cancels whatever moves slowly (level, drift, daily cycle,
             * load), and the median ignores the one large difference of
             * a step, so a level change does not read as noise (a window
             * std does: a step of 4 spreads in a 48-reading window
             * doubles it).  The window's median |d| against the mean |d|
             * of the key's life before the window (running statistics:
             * the median is not updatable), each divided by what it is
             * for a normal noise of sd 1 (|d| of sd sqrt 2: median
             * 0.6745 sqrt 2, mean 2/sqrt(pi)): log 1 = 0 when as usual. */
            const int nb = (int)tb->nv;
            double prev = NAN, bm, bsd;
            int nd = 0;
            rs_fe_base_t ex = {0, 0, 0};
            for (int j = 0; j < cnt; j++) { /* oldest first, the event last */
                const int kept = j < nsel;
                const uint8_t *it =
                    kept ? items + (size_t)f->sel[nsel - 1 - j] * isz : ci;
                double v = rs_fe_item_v(it, c->vi);
                if (!isfinite(v)) continue;
                if (isfinite(prev)) {
                    double d = fabs(v - prev);
                    f->dif[nd++] = d;
                    if (kept) rs_fe_welford(&ex, d); /* in the life already */
                }
                prev = v;
            }
            if (nd < 2 || tb->nbase < 2 * (uint32_t)nb ||
                !rs_fe_baseline(f, tb, h, nb + c->vi, &ex, &bm, &bsd) ||
                !(bm > 0))
                break;
            const double lim = log(RS_FE_BASE_CLIP);
            double med = rs_fe_median(f->dif, nd);
            /* (med / (0.6745 sqrt 2)) / (bm / (2 / sqrt pi)) */
            o = med > 0 ? log(med / bm * 1.1283791670955126 /
                              (0.6744897501960817 * 1.4142135623730951))
                        : -lim;
            if (o > lim) o = lim;
            if (o < -lim) o = -lim;
            /* only what chance does not explain: the log ratio beyond 3
             * of its sampling sds for a normal noise, so the input is
             * exactly 0 on a healthy machine and on a failure that does
             * not change the noise.  Both estimates err: the window's log
             * median of nd |differences| by K_WIN / sqrt(nd), the
             * baseline's log mean of m by sqrt(V_BASE / m), m its
             * differences (own, topped up with the fleet's), counting the
             * dependence of successive differences (features_int.h: the
             * independent formulas, 1.166 and pi/2 - 1, put the band 10 %
             * too narrow and let 3.5x as many healthy windows through).
             * Measured: the raw log ratio (sd 0.18 on healthy readings at
             * 48) cost the step and drift shapes the way base_spread did,
             * an input of pure sampling noise there; what passes the band
             * by chance is rare, but standardised by the models (whose
             * scale for an input that is almost always 0 is tiny) it
             * reaches their clip (docs/maintenance.md). */
            double own = tb->nbase ? (h ? rs_fe_bases(tb, h)[nb + c->vi].n : 0) - ex.n : 0;
            if (own < 0.5) own = 0;
            double kk = (double)f->conf.baseline_prior - own;
            if (kk < 0) kk = 0;
            if (kk > tb->fleet[nb + c->vi].n) kk = tb->fleet[nb + c->vi].n;
            double m = own + kk;
            double se = rs_fe_noise_se(nd, m);
            o -= 3.0 * se;
            if (o < 0) o = 0;
            break;
        }
        default: continue;  /* calendar: written above */
        }
        out[k] = (float)o;
    }
}

void rs_features_set_scope(rs_features_t *f, int scope) {
    f->scope = scope == RS_FEATURES_SCOPE_ENTITY || scope == RS_FEATURES_SCOPE_SHARED
                   ? scope : RS_FEATURES_SCOPE_ALL;
}

int rs_features_is_shared(const rs_features_t *f, int i) {
    if (i < 0 || i >= f->dim) return 0;
    return f->spec[f->out_spec[i]].tab != f->ent_tab;
}

/* Table ti is computed and updated in the handle's scope. */
static inline int rs_fe_in_scope(const rs_features_t *f, int ti) {
    return f->scope == RS_FEATURES_SCOPE_ALL ||
           (f->scope == RS_FEATURES_SCOPE_ENTITY) == (ti == f->ent_tab);
}

rs_err_t rs_features_process(rs_features_t *f, const rs_event_t *ev,
                             float *out, uint32_t *flags_out) {
    const int64_t t = ev->event_time_ms;
    uint32_t flags = 0;
    if (flags_out) *flags_out = 0;
    if (t <= 0 || !isfinite(ev->amount) || ev->amount < 0 || !ev->entity_id[0])
        return RS_ERR_INVALID;

    if (f->st.events && t < f->wm - f->conf.allowed_lateness) {
        flags |= RS_FEATURES_FLAG_LATE;
        f->st.late++;
    }
    if (t > f->wm) f->wm = t;
    if (t < f->t0) f->t0 = t;
    f->st.events++;
    if (f->has_cal) {
        /* the zone's offset is constant on [tz_from, tz_until): one binary
         * search per DST change, not per event */
        if (t < f->tz_from || t >= f->tz_until)
            f->tz_off = rs_tz_offset(f->tz, t, &f->tz_from, &f->tz_until);
        int64_t local = t + (int64_t)f->tz_off * 1000;
        int64_t day = rs_fe_floordiv(local, RS_FE_DAY_MS);
        f->cal_hour = (double)(local - day * RS_FE_DAY_MS) / (double)RS_FE_HOUR_MS;
        f->cal_dow = (int)(((day + 3) % 7 + 7) % 7);   /* 1970-01-01: Thursday */
    }

    /* operating conditions (features.setting_fields): the reading's
     * values normalised per condition before baselines and trends */
    if (f->opc) rs_opcond_observe_event(f->opc, ev);

    rs_fe_cur_t cur[RS_FEATURES_MAX_TABLES];
    uint64_t keys[RS_FEATURES_MAX_TABLES] = {0};
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_tab_t *tb = &f->tab[ti];
        rs_fe_cur_t *c = &cur[ti];
        c->h = NULL;
        if (!rs_fe_in_scope(f, ti)) { /* another stage's table */
            c->key = 0;
            continue;
        }
        rs_fe_sweep(f, ti);
        const char *ks = rs_fe_text(ev, tb->kkind, tb->key);
        c->key = ks ? rs_fe_key(ks) : 0;
        memcpy(c->item, &t, 8);
        for (int v = 0; v < tb->nv; v++) {
            float fv = tb->vkind[v] == RS_FE_K_AMOUNT
                           ? (float)ev->amount
                           : (float)rs_fe_numeric(ev, tb->vname[v]);
            if (f->opc && tb->vkind[v] == RS_FE_K_NUMERIC)
                fv = (float)rs_opcond_value(f->opc, tb->vname[v], fv);
            memcpy(c->item + 8 + 4 * v, &fv, 4);
        }
        for (int a = 0; a < tb->na; a++) {
            const char *as = rs_fe_text(ev, tb->akind[a], tb->aname[a]);
            uint32_t h = as ? rs_fe_h32(as) : 0;
            memcpy(c->item + 8 + 4 * (tb->nv + a), &h, 4);
        }
        /* start the cache misses of every lookup at once */
        if (c->key) __builtin_prefetch(&tb->index[(uint32_t)c->key & tb->mask]);
    }
    const uint64_t evid = rs_hash_str(ev->id);
    {
        rs_fe_evidx_t *x = &f->evidx;
        __builtin_prefetch(&x->index[(uint32_t)evid & x->mask]);
        if (x->n == x->cap)
            __builtin_prefetch(&x->index[(uint32_t)x->ring[x->head].id & x->mask]);
    }
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_cur_t *c = &cur[ti];
        if (c->key) {
            rs_fe_tab_t *tb = &f->tab[ti];
            uint32_t v = tb->index[(uint32_t)c->key & tb->mask];
            if (v) __builtin_prefetch(rs_fe_slot(tb, v - 1));
        }
    }
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_cur_t *c = &cur[ti];
        if (c->key) {
            int is_new;
            c->h = rs_fe_get_or_new(f, ti, c->key, t, &is_new);
            if (ti == f->ent_tab) {
                if (is_new) flags |= RS_FEATURES_FLAG_NEW_ENTITY;
                /* the entity's state belongs to the partition of its
                 * newest event (copy-before-write: the tag is saved
                 * with the slot by the insert below) */
                rs_fe_touch_slot(f, ti, c->h->slot);
                f->tab[ti].part[c->h->slot] = (uint16_t)(f->cur_part + 1);
            }
            keys[ti] = c->key;
        }
    }

    /* the newest ring items are read first: fetch them while the event
     * index is updated (independent of the features) */
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_hdr_t *h = cur[ti].h;
        if (!h || !h->ev_n) continue;
        const rs_fe_tab_t *tb = &f->tab[ti];
        uint32_t p = (h->ev_head + (uint32_t)h->ev_n - 1) % tb->hist;
        const uint8_t *it = rs_fe_items(tb, h) + (size_t)p * tb->item_size;
        __builtin_prefetch(it);
        __builtin_prefetch(it - 64 >= rs_fe_items(tb, h) ? it - 64 : it);
    }
    rs_fe_evidx_add(f, evid, t, keys);

    for (int i = 0; i < f->nspec; i++) {
        const rs_fe_cspec_t *c = &f->spec[i];
        if (!rs_fe_in_scope(f, c->tab)) continue; /* the caller's values */
        rs_fe_spec_eval(f, c, &cur[c->tab], t, out + c->out0);
    }

    /* now add the event */
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_tab_t *tb = &f->tab[ti];
        rs_fe_hdr_t *h = cur[ti].h;
        if (!h) continue;
        rs_fe_touch_slot(f, ti, h->slot);
        float pv[RS_FEATURES_MAX_VALUES];
        int pv_ok = 0;
        if (tb->nbase > (uint32_t)tb->nv && h->ev_n) {
            /* base_noise: per value, the key's newest kept reading of it
             * before the insert (NaN: none) */
            const uint8_t *items = rs_fe_items(tb, h);
            for (int v = 0; v < tb->nv; v++) {
                pv[v] = NAN;
                uint32_t p = (h->ev_head + h->ev_n - 1u) % tb->hist;
                for (uint32_t i = 0; i < h->ev_n; i++, p = p ? p - 1 : tb->hist - 1) {
                    float fv;
                    memcpy(&fv, items + (size_t)p * tb->item_size + 8 + 4 * (size_t)v,
                           sizeof(fv));
                    if (isfinite(fv)) { pv[v] = fv; break; }
                }
            }
            pv_ok = 1;
        }
        int r = rs_fe_ring_insert(rs_fe_items(tb, h), tb->item_size, tb->hist,
                                  &h->ev_head, &h->ev_n, cur[ti].item);
        if (r == 0) {
            f->st.cap_hits++;
            if (ti == f->ent_tab || (f->ent_tab < 0 && ti == 0)) {
                flags |= RS_FEATURES_FLAG_DROPPED;
                f->st.dropped++;
            }
        } else if (r == 2) {
            f->st.cap_hits++;
        }
        if (tb->nbkt) {
            /* its bucket; an older bucket at that index is overwritten, an
             * event older than the bucket there is too old to keep */
            int64_t b = rs_fe_floordiv(t, tb->bkt_ms);
            if (b >= INT32_MAX) b = INT32_MAX - 1;  /* past year 6000 */
            rs_fe_bkt_t *bk = &rs_fe_bkts(tb, h)[b % tb->nbkt];
            if (bk->b1 < b + 1) {
                memset(bk, 0, sizeof(*bk));
                bk->b1 = (int32_t)(b + 1);
            }
            if (bk->b1 == b + 1) {
                float v;
                memcpy(&v, cur[ti].item + 8 + 4 * (size_t)tb->bkt_vi, sizeof(v));
                bk->n++;
                if (isfinite(v)) { bk->nv++; bk->sum += v; }
            }
        }
        if (tb->nbase) {
            /* baselines: the key's life and the fleet (every reading, so
             * a window's kept readings are all in its key's baseline) */
            rs_fe_base_t *bs = rs_fe_bases(tb, h);
            if (tb->nbase > (uint32_t)tb->nv && pv_ok) {
                /* base_noise: |reading - the key's newest kept reading
                 * before it| (the ring's newest, read before the insert) */
                for (int v = 0; v < tb->nv; v++) {
                    float fv;
                    memcpy(&fv, cur[ti].item + 8 + 4 * (size_t)v, sizeof(fv));
                    double d = (double)fv - (double)pv[v];
                    if (!isfinite(d)) continue;
                    rs_fe_welford(&bs[tb->nv + v], fabs(d));
                    rs_fe_welford(&tb->fleet[tb->nv + v], fabs(d));
                }
            }
            for (int v = 0; v < tb->nv; v++) {
                float fv;
                memcpy(&fv, cur[ti].item + 8 + 4 * (size_t)v, sizeof(fv));
                if (!isfinite(fv)) continue;
                /* operating conditions: the reading against its machine's
                 * level teaches its condition's effect (opcond.h) */
                if (f->opc && ti == f->ent_tab && bs[v].n >= 1)
                    rs_opcond_learn_field(f->opc, tb->vname[v], bs[v].mean);
                if (rs_fe_learns(f, tb, h, v, fv)) rs_fe_welford(&bs[v], fv);
                rs_fe_welford(&tb->fleet[v], fv);
            }
        }
        if (t > tb->seen[h->slot]) tb->seen[h->slot] = t;
    }
    if (f->st.events == 1) {
        memcpy(f->first, out, (size_t)f->dim * sizeof(*out));
    } else {
        for (int i = 0; i < f->dim; i++)
            if (out[i] != f->first[i]) f->varied[i] = 1;
    }
    if (flags_out) *flags_out = flags;
    return RS_OK;
}

/* ------------------------------------------------------------------ labels */

rs_err_t rs_features_label(rs_features_t *f, const rs_label_t *lb) {
    rs_fe_evidx_t *x = &f->evidx;
    int64_t pos = rs_fe_evidx_pos(x, rs_hash_str(lb->event_id));
    if (pos < 0) {
        f->st.labels_unknown++;
        return RS_ERR_NOTFOUND;
    }
    uint32_t rp = x->index[pos] - 1;
    rs_fe_evref_t *r = &x->ring[rp];
    if (r->labelled) {
        f->st.labels_duplicate++;
        return RS_OK;
    }
    rs_fe_touch_evid(f, rp);
    r->labelled = 1;
    f->st.labels_applied++;
    if (!(lb->value >= 0.5)) return RS_OK;

    /* A label cannot arrive before its event. */
    rs_fe_lab_t l = {.et = r->t,
                     .arr = lb->label_time_ms > 0 ? lb->label_time_ms : f->wm};
    if (l.arr < r->t) l.arr = r->t;
    for (int ti = 0; ti < f->ntab; ti++) {
        rs_fe_tab_t *tb = &f->tab[ti];
        if ((!tb->nlab && !tb->nbkt) || !r->keys[ti]) continue;
        rs_fe_hdr_t *h = rs_fe_get(f, ti, r->keys[ti]);
        if (!h) continue;
        rs_fe_touch_slot(f, ti, h->slot);
        if (tb->nlab) {
            int ret = rs_fe_ring_insert(rs_fe_labs(tb, h), sizeof(l), tb->nlab,
                                        &h->lab_head, &h->lab_n, &l);
            if (ret != 1) f->st.labels_dropped++;
        }
        if (tb->nbkt) {
            /* counted at application (= arrival, in serve and eval order) */
            int64_t b = rs_fe_floordiv(l.et, tb->bkt_ms);
            rs_fe_bkt_t *bk = &rs_fe_bkts(tb, h)[b % tb->nbkt];
            if (bk->b1 == b + 1) {
                bk->fraud++;
                /* remembered by arrival: an event before it must not count it */
                rs_fe_lab_t r = {.et = l.arr, .arr = l.et};  /* {arr, et} */
                rs_fe_ring_insert(rs_fe_recs(tb, h), sizeof(r), tb->nrec,
                                  &h->rec_head, &h->rec_n, &r);
            } else {
                f->st.labels_dropped++;
            }
        }
    }
    return RS_OK;
}

rs_err_t rs_features_reset(rs_features_t *f, const char *entity_id) {
    if (f->ent_tab < 0 || !entity_id || !entity_id[0]) return RS_ERR_NOTFOUND;
    rs_fe_tab_t *tb = &f->tab[f->ent_tab];
    rs_fe_hdr_t *h = rs_fe_get(f, f->ent_tab, rs_fe_key(entity_id));
    if (!h) return RS_ERR_NOTFOUND;
    rs_fe_touch_slot(f, f->ent_tab, h->slot);
    h->ev_head = h->ev_n = 0;
    if (tb->nbase) memset(rs_fe_bases(tb, h), 0, tb->nbase * sizeof(rs_fe_base_t));
    f->st.resets++;
    return RS_OK;
}

int rs_features_constant(const rs_features_t *f, int *idx, int cap) {
    if (f->st.events < 2) return 0;
    int n = 0;
    for (int i = 0; i < f->dim; i++)
        if (!f->varied[i]) {
            if (n < cap) idx[n] = i;
            n++;
        }
    return n;
}

float rs_features_constant_value(const rs_features_t *f, int i) {
    return i >= 0 && i < f->dim && f->st.events ? f->first[i] : 0.0f;
}

/* ------------------------------------------------------------------- stats */

void rs_features_stats(const rs_features_t *f, rs_features_stats_t *st) {
    *st = f->st;
    st->entity_keys = f->ent_tab >= 0 ? f->tab[f->ent_tab].used : 0;
    st->cp_keys = 0;
    for (int t = 0; t < f->ntab; t++)
        if (t != f->ent_tab) st->cp_keys += f->tab[t].used;
    st->watermark_ms = f->wm == INT64_MIN ? 0 : f->wm;
    st->start_ms = f->t0 == INT64_MAX || f->t0 == INT64_MIN ? 0 : f->t0;
}

void rs_features_track_gone(rs_features_t *f, uint32_t cap) {
    free(f->gone_id);
    free(f->gone_part);
    f->gone_id = cap ? rs_calloc(cap, sizeof(*f->gone_id)) : NULL;
    f->gone_part = cap ? rs_calloc(cap, sizeof(*f->gone_part)) : NULL;
    f->gone_cap = cap;
    f->ngone = 0;
    /* entity slots: at most ~7 per event leave (sweep, eviction, expiry
     * on access), cap is 4 x batch_max */
    free(f->gent_key);
    free(f->gent_part);
    f->gent_cap = cap * 4;
    f->gent_key = cap ? rs_calloc(f->gent_cap, sizeof(*f->gent_key)) : NULL;
    f->gent_part = cap ? rs_calloc(f->gent_cap, sizeof(*f->gent_part)) : NULL;
    f->ngent = 0;
}

int rs_features_ents_gone_take(rs_features_t *f, const uint64_t **keys,
                               const int32_t **parts, uint64_t *lost) {
    int n = (int)f->ngent;
    *keys = f->gent_key;
    *parts = f->gent_part;
    if (lost) {
        *lost = f->gent_lost;
        f->gent_lost = 0;
    }
    f->ngent = 0;
    return n;
}

int rs_features_entity_drop(rs_features_t *f, int32_t partition,
                            uint64_t key) {
    if (f->ent_tab < 0) return 0;
    rs_fe_tab_t *tab = &f->tab[f->ent_tab];
    int64_t s = rs_fe_tab_find(tab, key ? key : 1);
    if (s < 0 || (int32_t)tab->part[s] - 1 != partition) return 0;
    rs_fe_tab_remove(f, f->ent_tab, (uint32_t)s);
    return 1;
}

int rs_features_gone_take(rs_features_t *f, const uint64_t **ids,
                          const int32_t **parts, uint64_t *lost) {
    int n = (int)f->ngone;
    *ids = f->gone_id;
    *parts = f->gone_part;
    if (lost) {
        *lost = f->gone_lost;
        f->gone_lost = 0;
    }
    f->ngone = 0;
    return n;
}
