/* features.c -- sliding-window features in event time.
 *
 * See features.h for the contract and docs/features.md for the semantics.
 * Invariants kept here:
 *  - every ring (entity events, sensor values, label arrivals) is sorted by
 *    time, ties in insertion order; a full ring drops its oldest entry, or
 *    the new one if it is older than all kept entries.  So a ring always
 *    holds the top-`cap` entries by (time, insertion order) of everything
 *    ever inserted since the key was created -- the brute-force reference in
 *    tests/features relies on exactly this;
 *  - a slot's key is 0 iff the slot is free;
 *  - the index tables use linear probing with backward-shift deletion (no
 *    tombstones), so lookups stay short however long the process runs;
 *  - nothing here allocates after rs_features_new().
 */
#include "features/features.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_FE_MIN_MS   60000LL
#define RS_FE_HOUR_MS  3600000LL
#define RS_FE_DAY_MS   86400000LL

#define RS_FE_SWEEP_STEP   4   /* slots checked for expiry per table per event */
#define RS_FE_EVICT_PROBE  8   /* slots compared when a pool is full          */
#define RS_FE_CP_HOURS    24   /* hour buckets of a counterparty              */
#define RS_FE_CP_LBUCKETS 30   /* label-window buckets of a counterparty      */

/* log1p of the "no previous event" sentinel: 1e8 seconds (~3.2 years). */
#define RS_FE_SINCE_NONE_S 1e8

#define RS_FE_Z_CLIP 100.0

/* Feature layout: the base block, then 2 per sensor field. */
enum {
    RS_FE_AMOUNT_LOG = 0,
    RS_FE_CNT_10M,
    RS_FE_CNT_1H,
    RS_FE_CNT_24H,
    RS_FE_CNT_7D,
    RS_FE_SUM_24H,
    RS_FE_MEAN_7D,
    RS_FE_STD_7D,
    RS_FE_RATIO_7D,
    RS_FE_Z_7D,
    RS_FE_SINCE_LAST,
    RS_FE_CP_DISTINCT_24H,
    RS_FE_CP_NEW,
    RS_FE_SMALL_1H,
    RS_FE_ENT_FRAUD,
    RS_FE_CP_CNT_24H,
    RS_FE_CP_FRAUD_RATE,
    RS_FE__BASE
};

static const char *const rs_fe_base_names[RS_FE__BASE] = {
    "amount_log1p",     "ent_cnt_10m",      "ent_cnt_1h",
    "ent_cnt_24h",      "ent_cnt_7d",       "ent_sum_24h",
    "ent_mean_7d",      "ent_std_7d",       "amount_ratio_7d",
    "amount_z_7d",      "since_last_log1p", "ent_cp_distinct_24h",
    "cp_new",           "ent_small_cnt_1h", "ent_fraud_cnt",
    "cp_cnt_24h",       "cp_fraud_rate",
};

#define RS_FE_DESC_MAX 192

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_features_fields[] = {
    {"max_keys", RS_CONF_INT, "65536",
     offsetof(rs_features_conf_t, max_keys), 0,
     "entity slots preallocated; the least recently seen is evicted when full",
     NULL, 1, 268435456},
    {"max_counterparties", RS_CONF_INT, "65536",
     offsetof(rs_features_conf_t, max_counterparties), 0,
     "counterparty slots preallocated; evicted like entities", NULL, 1,
     268435456},
    {"history", RS_CONF_INT, "64", offsetof(rs_features_conf_t, history), 0,
     "events kept per entity (windows see at most this many)", NULL, 1, 4096},
    {"key_ttl", RS_CONF_DURATION, "30d", offsetof(rs_features_conf_t, key_ttl),
     0, "event time after which an idle entity or counterparty is forgotten",
     NULL, 1, 0x1p62},
    {"allowed_lateness", RS_CONF_DURATION, "1h",
     offsetof(rs_features_conf_t, allowed_lateness), 0,
     "events older than the watermark minus this are flagged late", NULL, 0,
     0x1p62},
    {"small_amount", RS_CONF_DOUBLE, "5.0",
     offsetof(rs_features_conf_t, small_amount), 0,
     "amounts below this count as small (card testing)", NULL, 0, 1e12},
    {"label_window", RS_CONF_DURATION, "30d",
     offsetof(rs_features_conf_t, label_window), 0,
     "window of the label-aware features (fraud counts and rates)", NULL,
     30000, 0x1p62},
    {"label_index", RS_CONF_INT, "1048576",
     offsetof(rs_features_conf_t, label_index), 0,
     "recent event ids remembered to route labels to their keys", NULL, 1,
     268435456},
    {"sensor_fields", RS_CONF_STRING, "temperature,vibration,pressure,rpm",
     offsetof(rs_features_conf_t, sensor_fields),
     sizeof(((rs_features_conf_t *)0)->sensor_fields),
     "comma list of numeric fields (max 8) that get delta and slope features",
     NULL, 0, 0},
};

const rs_conf_field_t *rs_features_conf_fields(int *nfields) {
    if (nfields) *nfields = (int)RS_ARRAY_LEN(rs_features_fields);
    return rs_features_fields;
}

/* Apply the table's textual defaults without a config object (config.c's
 * rs_conf_add_section does the same when the section is registered). */
static void rs_fe_conf_defaults(const rs_conf_field_t *fields, int n,
                                void *base) {
    for (int i = 0; i < n; i++) {
        const rs_conf_field_t *fd = &fields[i];
        char *p = (char *)base + fd->offset;
        switch (fd->type) {
        case RS_CONF_STRING: rs_strlcpy(p, fd->def, fd->size); break;
        case RS_CONF_INT: *(int64_t *)p = strtoll(fd->def, NULL, 0); break;
        case RS_CONF_DOUBLE: *(double *)p = strtod(fd->def, NULL); break;
        case RS_CONF_BOOL: *(int *)p = !strcmp(fd->def, "true"); break;
        case RS_CONF_DURATION: rs_duration_parse(fd->def, (int64_t *)p); break;
        case RS_CONF_ENUM: *(int *)p = 0; break;
        }
    }
}

void rs_features_conf_init(rs_features_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    rs_fe_conf_defaults(rs_features_fields, (int)RS_ARRAY_LEN(rs_features_fields),
                        conf);
}

void rs_features_conf_section(rs_conf_section_t *sec, rs_features_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "features";
    sec->desc = "sliding-window features per entity and counterparty";
    sec->fields = rs_features_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_features_fields);
    sec->base = conf;
}

/* ------------------------------------------------------------- state */

/* One kept item of a time-sorted ring: an entity event (v = amount,
 * cp = 32-bit counterparty hash, 0 if none) or a sensor value (cp unused).
 * 16 bytes; `t` must stay the first member (rs_fe_ring_insert reads it). */
typedef struct rs_fe_item_s {
    int64_t t;     /* event time, ms */
    float v;
    uint32_t cp;
} rs_fe_item_t;

/* Common head of entity and counterparty slots.  The key's last-seen time
 * lives in the table's compact seen[] array, not here, so the sweep and the
 * eviction probe read 8 bytes per slot instead of touching whole slots. */
typedef struct rs_fe_hdr_s {
    uint64_t key;        /* 64-bit id hash; 0 = free slot */
    uint32_t slot;       /* own index in the pool */
    uint32_t pad_;
} rs_fe_hdr_t;

/* Entity slot.  Followed in the pool by
 *   rs_fe_item_t ev[history];                            event ring
 *   rs_fe_item_t sn[nsensors][RS_FEATURES_SENSOR_HIST];  sensor rings */
typedef struct rs_fe_ent_s {
    rs_fe_hdr_t h;
    uint16_t ev_head, ev_n;
    uint16_t lab_head, lab_n;
    uint16_t sn_head[RS_FEATURES_MAX_SENSORS];
    uint16_t sn_n[RS_FEATURES_MAX_SENSORS];
    int64_t lab[RS_FEATURES_ENT_LABELS];   /* fraud label arrival times */
} rs_fe_ent_t;

/* Counterparty slot (fixed size).  Bucket b of width w holds the events
 * with time / w == b in slot b % nbuckets; the slot's id says which b. */
typedef struct rs_fe_cp_s {
    rs_fe_hdr_t h;
    uint16_t lab_head, lab_n;
    uint32_t pad_;
    uint32_t hb_id[RS_FE_CP_HOURS], hb_cnt[RS_FE_CP_HOURS];
    uint32_t lb_id[RS_FE_CP_LBUCKETS], lb_cnt[RS_FE_CP_LBUCKETS];
    int64_t lab[RS_FEATURES_CP_LABELS];    /* fraud label arrival times */
} rs_fe_cp_t;

/* A key table: slot pool + open-addressing index of slot numbers. */
typedef struct rs_fe_tab_s {
    uint8_t *pool;       /* [cap][slot_size] */
    int64_t *seen;       /* [cap] largest event time per live slot;
                          * INT64_MAX for a free slot */
    size_t slot_size;
    uint32_t cap, used;
    uint32_t *index;     /* [mask + 1]: slot + 1, 0 = empty */
    uint32_t mask;
    uint32_t *freelist;  /* [cap] */
    uint32_t nfree;
    uint32_t cursor;     /* sweep / eviction probe position */
} rs_fe_tab_t;

/* Event index entry: routes a label to its keys. */
typedef struct rs_fe_evref_s {
    uint64_t id;         /* hash of the event id */
    uint64_t ent;        /* entity key */
    uint64_t cp;         /* counterparty key, 0 if none */
    int64_t t;           /* event time */
    uint32_t labelled;
    uint32_t pad_;
} rs_fe_evref_t;

typedef struct rs_fe_evidx_s {
    rs_fe_evref_t *ring; /* [cap], FIFO by insertion */
    uint32_t cap, head, n;
    uint32_t *index;     /* [mask + 1]: ring position + 1 */
    uint32_t mask;
} rs_fe_evidx_t;

struct rs_features_s {
    rs_features_conf_t conf;
    int nsens;
    char sens_name[RS_FEATURES_MAX_SENSORS][RS_NAME_MAX];
    int dim;
    char (*names)[RS_FEATURES_NAME_MAX];  /* [dim] */
    char (*descs)[RS_FE_DESC_MAX];        /* [dim] */
    char window_words[32];                /* label_window as "30 days" */

    rs_fe_tab_t ents, cps;
    rs_fe_evidx_t evidx;
    int64_t lb_width;                     /* label-window bucket width, ms */

    /* distinct-counterparty scratch set, generation-stamped */
    uint32_t *dset_key, *dset_gen;        /* [dmask + 1] */
    uint32_t dmask, dgen;

    int64_t wm;                           /* watermark: max event time */
    rs_features_stats_t st;
};

/* ------------------------------------------------------------ helpers */

static uint32_t rs_fe_pow2(uint64_t n) {
    uint64_t p = 1;
    while (p < n) p <<= 1;
    return (uint32_t)p;
}

static uint64_t rs_fe_key(const char *id) {
    uint64_t h = rs_hash_str(id);
    return h ? h : 1;
}

static uint32_t rs_fe_cp32(uint64_t h) {
    uint32_t c = (uint32_t)(h ^ (h >> 32));
    return c ? c : 1;
}

static inline int64_t rs_fe_time_of(const void *e) {
    int64_t t;
    memcpy(&t, e, sizeof(t));
    return t;
}

/* Insert element `e` (of size esz, time first) into a time-sorted circular
 * ring.  Returns 0 if e was older than every entry of a full ring (not
 * kept), 1 otherwise.  Ties go after existing equal times. */
static int rs_fe_ring_insert(void *arr, size_t esz, uint32_t cap,
                             uint16_t *head, uint16_t *n, const void *e) {
    uint8_t *a = arr;
    int64_t et = rs_fe_time_of(e);
#define RS_FE_AT(i) (a + (((size_t)*head + (i)) % cap) * esz)
    if (*n == cap) {
        if (et < rs_fe_time_of(RS_FE_AT(0))) return 0;
        *head = (uint16_t)((*head + 1) % cap);
        (*n)--;
    }
    uint32_t pos = *n;
    while (pos > 0 && rs_fe_time_of(RS_FE_AT(pos - 1)) > et) {
        memcpy(RS_FE_AT(pos), RS_FE_AT(pos - 1), esz);
        pos--;
    }
    memcpy(RS_FE_AT(pos), e, esz);
    (*n)++;
#undef RS_FE_AT
    return 1;
}

/* ------------------------------------------------------------ tables */

static void rs_fe_tab_init(rs_fe_tab_t *tab, uint32_t cap, size_t slot_size) {
    memset(tab, 0, sizeof(*tab));
    tab->slot_size = slot_size;
    tab->cap = cap;
    tab->pool = rs_aligned_calloc(cap, slot_size);
    tab->seen = rs_aligned_calloc(cap, sizeof(int64_t));
    for (uint32_t i = 0; i < cap; i++) tab->seen[i] = INT64_MAX;
    tab->mask = rs_fe_pow2((uint64_t)cap * 2) - 1;
    tab->index = rs_aligned_calloc((size_t)tab->mask + 1, sizeof(uint32_t));
    tab->freelist = rs_aligned_calloc(cap, sizeof(uint32_t));
    for (uint32_t i = 0; i < cap; i++) tab->freelist[i] = cap - 1 - i;
    tab->nfree = cap;
}

static void rs_fe_tab_free(rs_fe_tab_t *tab) {
    rs_free(tab->pool);
    rs_free(tab->seen);
    rs_free(tab->index);
    rs_free(tab->freelist);
}

static inline rs_fe_hdr_t *rs_fe_slot(const rs_fe_tab_t *tab, uint32_t s) {
    return (rs_fe_hdr_t *)(tab->pool + (size_t)s * tab->slot_size);
}

/* Index position holding `key`, or -1. */
static int64_t rs_fe_tab_pos(const rs_fe_tab_t *tab, uint64_t key) {
    uint32_t i = (uint32_t)key & tab->mask;
    for (;;) {
        uint32_t v = tab->index[i];
        if (!v) return -1;
        if (rs_fe_slot(tab, v - 1)->key == key) return i;
        i = (i + 1) & tab->mask;
    }
}

static int64_t rs_fe_tab_find(const rs_fe_tab_t *tab, uint64_t key) {
    int64_t pos = rs_fe_tab_pos(tab, key);
    return pos < 0 ? -1 : (int64_t)tab->index[pos] - 1;
}

/* Backward-shift deletion of index position i. */
static void rs_fe_tab_unindex(rs_fe_tab_t *tab, uint32_t i) {
    uint32_t j = i;
    for (;;) {
        tab->index[i] = 0;
        for (;;) {
            j = (j + 1) & tab->mask;
            if (!tab->index[j]) return;
            uint32_t k =
                (uint32_t)rs_fe_slot(tab, tab->index[j] - 1)->key & tab->mask;
            /* the entry at j may move to i unless its home k lies
             * cyclically in (i, j] */
            int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        tab->index[i] = tab->index[j];
        i = j;
    }
}

static void rs_fe_tab_remove(rs_fe_tab_t *tab, uint32_t s) {
    rs_fe_hdr_t *h = rs_fe_slot(tab, s);
    int64_t pos = rs_fe_tab_pos(tab, h->key);
    if (pos >= 0) rs_fe_tab_unindex(tab, (uint32_t)pos);
    h->key = 0;
    tab->seen[s] = INT64_MAX;
    tab->freelist[tab->nfree++] = s;
    tab->used--;
}

/* Take a slot for `key` (not present), evicting if the pool is full.
 * The slot is zeroed and keyed. */
static uint32_t rs_fe_tab_alloc(rs_fe_tab_t *tab, uint64_t key,
                                uint64_t *evictions) {
    if (!tab->nfree) {
        /* Pool full: every slot is live; evict the least recently seen
         * of a bounded probe. */
        uint32_t best = tab->cursor % tab->cap;
        for (uint32_t k = 1; k < RS_FE_EVICT_PROBE && k < tab->cap; k++) {
            uint32_t s = (tab->cursor + k) % tab->cap;
            if (tab->seen[s] < tab->seen[best]) best = s;
        }
        tab->cursor = (tab->cursor + RS_FE_EVICT_PROBE) % tab->cap;
        rs_fe_tab_remove(tab, best);
        (*evictions)++;
    }
    uint32_t s = tab->freelist[--tab->nfree];
    rs_fe_hdr_t *h = rs_fe_slot(tab, s);
    memset(h, 0, tab->slot_size);
    h->key = key;
    h->slot = s;
    uint32_t i = (uint32_t)key & tab->mask;
    while (tab->index[i]) i = (i + 1) & tab->mask;
    tab->index[i] = s + 1;
    tab->used++;
    return s;
}

/* The live slot of `key`, or NULL.  A key idle for more than key_ttl is
 * removed here (and counted) so results never depend on the sweep. */
static rs_fe_hdr_t *rs_fe_get(rs_features_t *f, rs_fe_tab_t *tab,
                              uint64_t key) {
    int64_t s = rs_fe_tab_find(tab, key);
    if (s < 0) return NULL;
    if (f->wm - tab->seen[s] > f->conf.key_ttl) {
        rs_fe_tab_remove(tab, (uint32_t)s);
        f->st.expirations++;
        return NULL;
    }
    return rs_fe_slot(tab, (uint32_t)s);
}

static rs_fe_hdr_t *rs_fe_get_or_new(rs_features_t *f, rs_fe_tab_t *tab,
                                     uint64_t key, int64_t t, int *is_new) {
    rs_fe_hdr_t *h = rs_fe_get(f, tab, key);
    *is_new = 0;
    if (h) return h;
    uint32_t s = rs_fe_tab_alloc(tab, key, &f->st.evictions);
    h = rs_fe_slot(tab, s);
    tab->seen[s] = t;
    *is_new = 1;
    return h;
}

/* Incremental expiry: a few pool slots per call. */
static void rs_fe_sweep(rs_features_t *f, rs_fe_tab_t *tab) {
    for (int k = 0; k < RS_FE_SWEEP_STEP; k++) {
        uint32_t s = tab->cursor;
        tab->cursor = (tab->cursor + 1) % tab->cap;
        if (tab->seen[s] != INT64_MAX && f->wm - tab->seen[s] > f->conf.key_ttl) {
            rs_fe_tab_remove(tab, s);
            f->st.expirations++;
        }
    }
}

/* ------------------------------------------------------- event index */

static int64_t rs_fe_evidx_pos(const rs_fe_evidx_t *x, uint64_t id) {
    uint32_t i = (uint32_t)id & x->mask;
    for (;;) {
        uint32_t v = x->index[i];
        if (!v) return -1;
        if (x->ring[v - 1].id == id) return i;
        i = (i + 1) & x->mask;
    }
}

static void rs_fe_evidx_unindex(rs_fe_evidx_t *x, uint32_t i) {
    uint32_t j = i;
    for (;;) {
        x->index[i] = 0;
        for (;;) {
            j = (j + 1) & x->mask;
            if (!x->index[j]) return;
            uint32_t k = (uint32_t)x->ring[x->index[j] - 1].id & x->mask;
            int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        x->index[i] = x->index[j];
        i = j;
    }
}

static void rs_fe_evidx_add(rs_fe_evidx_t *x, uint64_t id, uint64_t ent,
                            uint64_t cp, int64_t t) {
    int64_t pos = rs_fe_evidx_pos(x, id);
    if (pos >= 0) { /* redelivered id: refresh the route, keep the label */
        rs_fe_evref_t *r = &x->ring[x->index[pos] - 1];
        r->ent = ent;
        r->cp = cp;
        r->t = t;
        return;
    }
    if (x->n == x->cap) { /* push out the oldest */
        int64_t old = rs_fe_evidx_pos(x, x->ring[x->head].id);
        if (old >= 0) rs_fe_evidx_unindex(x, (uint32_t)old);
        x->n--;
    }
    rs_fe_evref_t *r = &x->ring[x->head];
    r->id = id;
    r->ent = ent;
    r->cp = cp;
    r->t = t;
    r->labelled = 0;
    uint32_t i = (uint32_t)id & x->mask;
    while (x->index[i]) i = (i + 1) & x->mask;
    x->index[i] = x->head + 1;
    x->head = (x->head + 1) % x->cap;
    x->n++;
}

/* ----------------------------------------------------------- new/destroy */

static void rs_fe_window_words(int64_t ms, char *buf, size_t size) {
    if (ms % RS_FE_DAY_MS == 0)
        snprintf(buf, size, "%lld day%s", (long long)(ms / RS_FE_DAY_MS),
                 ms == RS_FE_DAY_MS ? "" : "s");
    else if (ms % RS_FE_HOUR_MS == 0)
        snprintf(buf, size, "%lld hour%s", (long long)(ms / RS_FE_HOUR_MS),
                 ms == RS_FE_HOUR_MS ? "" : "s");
    else if (ms % RS_FE_MIN_MS == 0)
        snprintf(buf, size, "%lld minute%s", (long long)(ms / RS_FE_MIN_MS),
                 ms == RS_FE_MIN_MS ? "" : "s");
    else
        rs_duration_fmt(ms, buf, size);
}

/* Split "a, b,c" into f->sens_name. */
static rs_err_t rs_fe_parse_sensors(rs_features_t *f, const char *list,
                                    char *errstr, size_t errstr_size) {
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        size_t len = (size_t)(e - b);
        if (f->nsens == RS_FEATURES_MAX_SENSORS)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.sensor_fields: more than %d fields",
                           RS_FEATURES_MAX_SENSORS);
        if (len >= RS_NAME_MAX)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.sensor_fields: field name '%.*s' longer "
                           "than %d characters",
                           (int)len, b, RS_NAME_MAX - 1);
        for (size_t k = 0; k < len; k++)
            if (!isalnum((unsigned char)b[k]) && b[k] != '_')
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.sensor_fields: field name '%.*s' "
                               "must be letters, digits and '_'",
                               (int)len, b);
        char name[RS_NAME_MAX];
        memcpy(name, b, len);
        name[len] = '\0';
        for (int k = 0; k < f->nsens; k++)
            if (!strcmp(f->sens_name[k], name))
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.sensor_fields: '%s' listed twice",
                               name);
        memcpy(f->sens_name[f->nsens++], name, len + 1);
    }
    return RS_OK;
}

static rs_err_t rs_fe_check_conf(const rs_features_conf_t *c, char *errstr,
                                 size_t errstr_size) {
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_features_fields); i++) {
        const rs_conf_field_t *fd = &rs_features_fields[i];
        const char *p = (const char *)c + fd->offset;
        double v;
        if (fd->type == RS_CONF_INT || fd->type == RS_CONF_DURATION)
            v = (double)*(const int64_t *)p;
        else if (fd->type == RS_CONF_DOUBLE)
            v = *(const double *)p;
        else
            continue;
        if (!isfinite(v) ||
            ((fd->min != 0 || fd->max != 0) && (v < fd->min || v > fd->max)))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.%s: %g is out of range [%g, %g]", fd->name,
                           v, fd->min, fd->max);
    }
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
    if (rs_fe_parse_sensors(f, f->conf.sensor_fields, errstr, errstr_size))
        goto fail;

    /* names and descriptions */
    f->dim = RS_FE__BASE + 2 * f->nsens;
    f->names = rs_calloc((size_t)f->dim, sizeof(*f->names));
    f->descs = rs_calloc((size_t)f->dim, sizeof(*f->descs));
    rs_fe_window_words(conf->label_window, f->window_words,
                       sizeof(f->window_words));
    {
        const char *w = f->window_words;
        char small[32];
        snprintf(small, sizeof(small), "%g", conf->small_amount);
        const char *d[RS_FE__BASE] = {
            "log(1 + amount) of this event",
            "entity's events in the 10 minutes up to this one",
            "entity's events in the hour up to this one",
            "entity's events in the 24 hours up to this one",
            "entity's events in the 7 days up to this one",
            "sum of the entity's amounts in the 24 hours up to this one",
            "mean amount of the entity's events in the last 7 days (0 if none)",
            "standard deviation of those amounts (0 if none)",
            "(amount + 1) / (7-day mean + 1); 1 if no history",
            "(amount - mean) / (std + 0.01 mean + 0.01) over 7 days, clipped "
            "to +-100; 0 if fewer than 2 events",
            "log(1 + seconds since the entity's previous event); log(1 + 1e8) "
            "if none",
            "distinct counterparties of the entity in the last 24 hours",
            "1 if the event's counterparty is not in the entity's kept "
            "history",
            NULL, /* small count, below */
            NULL, /* entity frauds, below */
            "counterparty's events in the current hour bucket and the 23 "
            "before",
            NULL, /* cp fraud rate, below */
        };
        for (int i = 0; i < RS_FE__BASE; i++) {
            rs_strlcpy(f->names[i], rs_fe_base_names[i], RS_FEATURES_NAME_MAX);
            if (d[i]) rs_strlcpy(f->descs[i], d[i], RS_FE_DESC_MAX);
        }
        snprintf(f->descs[RS_FE_SMALL_1H], RS_FE_DESC_MAX,
                 "entity's events with amount < %s in the last hour", small);
        snprintf(f->descs[RS_FE_ENT_FRAUD], RS_FE_DESC_MAX,
                 "entity's events labelled fraud with the label arrived in the "
                 "%s before this event",
                 w);
        snprintf(f->descs[RS_FE_CP_FRAUD_RATE], RS_FE_DESC_MAX,
                 "counterparty frauds whose label arrived in the last %s / "
                 "(its events in the last %s + 1)",
                 w, w);
        for (int k = 0; k < f->nsens; k++) {
            int i = RS_FE__BASE + 2 * k;
            const char *s = f->sens_name[k];
            snprintf(f->names[i], RS_FEATURES_NAME_MAX, "sensor_%s_delta", s);
            snprintf(f->descs[i], RS_FE_DESC_MAX,
                     "%s minus the mean of the entity's last %d %s values "
                     "(0 if absent)",
                     s, RS_FEATURES_SENSOR_HIST, s);
            snprintf(f->names[i + 1], RS_FEATURES_NAME_MAX, "sensor_%s_slope",
                     s);
            snprintf(f->descs[i + 1], RS_FE_DESC_MAX,
                     "least-squares slope per hour of the entity's last %d %s "
                     "values (0 if absent or fewer than 2)",
                     RS_FEATURES_SENSOR_HIST, s);
        }
    }

    /* state */
    size_t ent_size = sizeof(rs_fe_ent_t) +
                      (size_t)conf->history * sizeof(rs_fe_item_t) +
                      (size_t)f->nsens * RS_FEATURES_SENSOR_HIST *
                          sizeof(rs_fe_item_t);
    ent_size = (ent_size + 7) & ~(size_t)7;
    rs_fe_tab_init(&f->ents, (uint32_t)conf->max_keys, ent_size);
    rs_fe_tab_init(&f->cps, (uint32_t)conf->max_counterparties,
                   sizeof(rs_fe_cp_t));
    f->evidx.cap = (uint32_t)conf->label_index;
    f->evidx.ring = rs_aligned_calloc(f->evidx.cap, sizeof(rs_fe_evref_t));
    f->evidx.mask = rs_fe_pow2((uint64_t)f->evidx.cap * 2) - 1;
    f->evidx.index =
        rs_aligned_calloc((size_t)f->evidx.mask + 1, sizeof(uint32_t));
    f->lb_width = conf->label_window / RS_FE_CP_LBUCKETS;

    f->dmask = rs_fe_pow2((uint64_t)conf->history * 2) - 1;
    f->dset_key = rs_aligned_calloc((size_t)f->dmask + 1, sizeof(uint32_t));
    f->dset_gen = rs_aligned_calloc((size_t)f->dmask + 1, sizeof(uint32_t));

    f->wm = INT64_MIN;
    f->st.entity_slot_bytes = ent_size;
    f->st.mem_bytes =
        sizeof(*f) + (uint64_t)f->dim * (sizeof(*f->names) + sizeof(*f->descs)) +
        (uint64_t)f->ents.cap * (ent_size + 16) +
        ((uint64_t)f->ents.mask + 1) * 4 +
        (uint64_t)f->cps.cap * (sizeof(rs_fe_cp_t) + 16) +
        ((uint64_t)f->cps.mask + 1) * 4 +
        (uint64_t)f->evidx.cap * sizeof(rs_fe_evref_t) +
        ((uint64_t)f->evidx.mask + 1) * 4 + ((uint64_t)f->dmask + 1) * 8;
    return f;

fail:
    rs_features_destroy(f);
    return NULL;
}

void rs_features_destroy(rs_features_t *f) {
    if (!f) return;
    if (f->ents.pool) rs_fe_tab_free(&f->ents);
    if (f->cps.pool) rs_fe_tab_free(&f->cps);
    rs_free(f->evidx.ring);
    rs_free(f->evidx.index);
    rs_free(f->dset_key);
    rs_free(f->dset_gen);
    rs_free(f->names);
    rs_free(f->descs);
    rs_free(f);
}

int rs_features_dim(const rs_features_t *f) { return f->dim; }

const char *rs_features_name(const rs_features_t *f, int i) {
    return i >= 0 && i < f->dim ? f->names[i] : NULL;
}

const char *rs_features_desc(const rs_features_t *f, int i) {
    return i >= 0 && i < f->dim ? f->descs[i] : NULL;
}

/* ---------------------------------------------------------------- process */

static inline rs_fe_item_t *rs_fe_ent_items(rs_fe_ent_t *e) {
    return (rs_fe_item_t *)(e + 1);
}

static inline rs_fe_item_t *rs_fe_ent_sensor(const rs_features_t *f,
                                             rs_fe_ent_t *e, int k) {
    return rs_fe_ent_items(e) + f->conf.history +
           (size_t)k * RS_FEATURES_SENSOR_HIST;
}

/* Add cp32 to the distinct set; 1 if it was new. */
static int rs_fe_dset_add(rs_features_t *f, uint32_t cp) {
    uint32_t i = (cp * 0x9e3779b1u) & f->dmask;
    while (f->dset_gen[i] == f->dgen) {
        if (f->dset_key[i] == cp) return 0;
        i = (i + 1) & f->dmask;
    }
    f->dset_gen[i] = f->dgen;
    f->dset_key[i] = cp;
    return 1;
}

/* Fraud labels of a sorted ring counted at t: arrival a < t, t - a < W. */
static int rs_fe_label_count(const int64_t *lab, uint32_t cap, uint16_t head,
                             uint16_t n, int64_t t, int64_t w) {
    int c = 0;
    for (uint32_t i = 0, p = head; i < n; i++, p = p + 1 == cap ? 0 : p + 1) {
        int64_t a = lab[p];
        if (a >= t) break;
        if (t - a < w) c++;
    }
    return c;
}

static uint32_t rs_fe_bucket_sum(const uint32_t *id, const uint32_t *cnt,
                                 int nb, int64_t t, int64_t width) {
    int64_t b = t / width;
    uint32_t sum = 0;
    for (int k = 0; k < nb && b - k >= 0; k++) {
        uint32_t bk = (uint32_t)(b - k);
        int s = (int)(bk % (uint32_t)nb);
        if (id[s] == bk) sum += cnt[s];
    }
    return sum;
}

static void rs_fe_bucket_add(uint32_t *id, uint32_t *cnt, int nb, int64_t t,
                             int64_t width) {
    uint32_t b = (uint32_t)(t / width);
    int s = (int)(b % (uint32_t)nb);
    if (id[s] == b)
        cnt[s]++;
    else if (id[s] < b) {
        id[s] = b;
        cnt[s] = 1;
    } /* else: an older bucket than the slot holds -- outside every window */
}

/* Value of numeric field `name`, or NAN. */
static double rs_fe_numeric(const rs_event_t *ev, const char *name) {
    for (int i = 0; i < ev->n_numeric && i < RS_MAX_NUMERIC; i++)
        if (!strcmp(ev->numeric[i].name, name)) return ev->numeric[i].value;
    return NAN;
}

/* delta and slope of value v against the ring's items with time <= t. */
static void rs_fe_sensor_feats(const rs_fe_item_t *ring, uint16_t head,
                               uint16_t n, int64_t t, double v, float *delta,
                               float *slope) {
    const uint32_t cap = RS_FEATURES_SENSOR_HIST;
    int k = 0;
    double sum = 0;
    int64_t tref = 0;
    for (uint32_t i = 0, p = head; i < n; i++, p = p + 1 == cap ? 0 : p + 1) {
        const rs_fe_item_t *it = &ring[p];
        if (it->t > t) break;
        sum += it->v;
        tref = it->t;
        k++;
    }
    *delta = 0;
    *slope = 0;
    if (!k) return;
    double mean = sum / k;
    *delta = (float)(v - mean);
    if (k < 2) return;
    double tm = 0;
    for (int i = 0; i < k; i++)
        tm += (double)(ring[(head + i) % cap].t - tref) / RS_FE_HOUR_MS;
    tm /= k;
    double sxy = 0, sxx = 0;
    for (int i = 0; i < k; i++) {
        const rs_fe_item_t *it = &ring[(head + i) % cap];
        double dt = (double)(it->t - tref) / RS_FE_HOUR_MS - tm;
        sxy += dt * (it->v - mean);
        sxx += dt * dt;
    }
    if (sxx > 0) *slope = (float)(sxy / sxx);
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
    f->st.events++;
    rs_fe_sweep(f, &f->ents);
    rs_fe_sweep(f, &f->cps);

    /* keys */
    uint64_t ekey = rs_fe_key(ev->entity_id);
    int is_new;
    rs_fe_ent_t *ent =
        (rs_fe_ent_t *)rs_fe_get_or_new(f, &f->ents, ekey, t, &is_new);
    if (is_new) flags |= RS_FEATURES_FLAG_NEW_ENTITY;
    rs_fe_cp_t *cp = NULL;
    uint64_t ckey = 0;
    uint32_t cp32 = 0;
    if (ev->counterparty_id[0]) {
        ckey = rs_fe_key(ev->counterparty_id);
        cp32 = rs_fe_cp32(ckey);
        int cp_new;
        cp = (rs_fe_cp_t *)rs_fe_get_or_new(f, &f->cps, ckey, t, &cp_new);
    }

    /* entity windows: one pass over the time-sorted ring, stopping at the
     * first item later than t (only a late event sees such items). */
    const float amount = (float)ev->amount;
    const double a = amount;
    const rs_fe_item_t *ring = rs_fe_ent_items(ent);
    const uint32_t cap = (uint32_t)f->conf.history;
    const float small = (float)f->conf.small_amount;
    int c10m = 0, c1h = 0, c24h = 0, c7d = 0, small1h = 0, distinct = 0;
    int seen_cp = 0;
    double sum24 = 0, sum7 = 0;
    int64_t last = INT64_MIN;
    uint32_t n_le = 0; /* items with time <= t */
    if (++f->dgen == 0) { /* generation wrap: clear the set once */
        memset(f->dset_gen, 0, ((size_t)f->dmask + 1) * sizeof(uint32_t));
        f->dgen = 1;
    }
    for (uint32_t i = 0, p = ent->ev_head; i < ent->ev_n;
         i++, p = p + 1 == cap ? 0 : p + 1) {
        const rs_fe_item_t *it = &ring[p];
        if (it->t > t) break;
        n_le++;
        int64_t d = t - it->t;
        last = it->t;
        if (cp32 && it->cp == cp32) seen_cp = 1;
        if (d >= 7 * RS_FE_DAY_MS) continue;
        c7d++;
        sum7 += it->v;
        if (d >= RS_FE_DAY_MS) continue;
        c24h++;
        sum24 += it->v;
        if (it->cp) distinct += rs_fe_dset_add(f, it->cp);
        if (d >= RS_FE_HOUR_MS) continue;
        c1h++;
        if (it->v < small) small1h++;
        if (d >= 10 * RS_FE_MIN_MS) continue;
        c10m++;
    }
    double mean7 = c7d ? sum7 / c7d : 0, std7 = 0;
    if (c7d) {
        double ss = 0;
        for (uint32_t i = 0, p = ent->ev_head; i < n_le;
             i++, p = p + 1 == cap ? 0 : p + 1) {
            const rs_fe_item_t *it = &ring[p];
            if (t - it->t >= 7 * RS_FE_DAY_MS) continue;
            double dv = it->v - mean7;
            ss += dv * dv;
        }
        std7 = sqrt(ss / c7d);
    }
    double ratio = c7d ? (a + 1.0) / (mean7 + 1.0) : 1.0;
    double z = 0;
    if (c7d >= 2) {
        z = (a - mean7) / (std7 + 0.01 * mean7 + 0.01);
        if (z > RS_FE_Z_CLIP) z = RS_FE_Z_CLIP;
        if (z < -RS_FE_Z_CLIP) z = -RS_FE_Z_CLIP;
    }
    double since = last == INT64_MIN ? RS_FE_SINCE_NONE_S
                                     : (double)(t - last) / 1000.0;

    out[RS_FE_AMOUNT_LOG] = (float)log1p(a);
    out[RS_FE_CNT_10M] = (float)c10m;
    out[RS_FE_CNT_1H] = (float)c1h;
    out[RS_FE_CNT_24H] = (float)c24h;
    out[RS_FE_CNT_7D] = (float)c7d;
    out[RS_FE_SUM_24H] = (float)sum24;
    out[RS_FE_MEAN_7D] = (float)mean7;
    out[RS_FE_STD_7D] = (float)std7;
    out[RS_FE_RATIO_7D] = (float)ratio;
    out[RS_FE_Z_7D] = (float)z;
    out[RS_FE_SINCE_LAST] = (float)log1p(since);
    out[RS_FE_CP_DISTINCT_24H] = (float)distinct;
    out[RS_FE_CP_NEW] = (cp32 && !seen_cp) ? 1.0f : 0.0f;
    out[RS_FE_SMALL_1H] = (float)small1h;
    out[RS_FE_ENT_FRAUD] = (float)rs_fe_label_count(
        ent->lab, RS_FEATURES_ENT_LABELS, ent->lab_head, ent->lab_n, t,
        f->conf.label_window);
    if (cp) {
        uint32_t c24 = rs_fe_bucket_sum(cp->hb_id, cp->hb_cnt, RS_FE_CP_HOURS,
                                        t, RS_FE_HOUR_MS);
        uint32_t cw = rs_fe_bucket_sum(cp->lb_id, cp->lb_cnt, RS_FE_CP_LBUCKETS,
                                       t, f->lb_width);
        int fr = rs_fe_label_count(cp->lab, RS_FEATURES_CP_LABELS, cp->lab_head,
                                   cp->lab_n, t, f->conf.label_window);
        out[RS_FE_CP_CNT_24H] = (float)c24;
        out[RS_FE_CP_FRAUD_RATE] = (float)((double)fr / ((double)cw + 1.0));
    } else {
        out[RS_FE_CP_CNT_24H] = 0;
        out[RS_FE_CP_FRAUD_RATE] = 0;
    }

    /* sensors */
    double sval[RS_FEATURES_MAX_SENSORS];
    for (int k = 0; k < f->nsens; k++) {
        float *o = &out[RS_FE__BASE + 2 * k];
        sval[k] = rs_fe_numeric(ev, f->sens_name[k]);
        if (!isfinite(sval[k])) {
            o[0] = o[1] = 0;
            continue;
        }
        rs_fe_sensor_feats(rs_fe_ent_sensor(f, ent, k), ent->sn_head[k],
                           ent->sn_n[k], t, (double)(float)sval[k], &o[0],
                           &o[1]);
    }

    /* now add the event */
    rs_fe_item_t item = {.t = t, .v = amount, .cp = cp32};
    if (!rs_fe_ring_insert(rs_fe_ent_items(ent), sizeof(item), cap,
                           &ent->ev_head, &ent->ev_n, &item)) {
        flags |= RS_FEATURES_FLAG_DROPPED;
        f->st.dropped++;
    }
    for (int k = 0; k < f->nsens; k++) {
        if (!isfinite(sval[k])) continue;
        rs_fe_item_t si = {.t = t, .v = (float)sval[k], .cp = 0};
        rs_fe_ring_insert(rs_fe_ent_sensor(f, ent, k), sizeof(si),
                          RS_FEATURES_SENSOR_HIST, &ent->sn_head[k],
                          &ent->sn_n[k], &si);
    }
    if (t > f->ents.seen[ent->h.slot]) f->ents.seen[ent->h.slot] = t;
    if (cp) {
        rs_fe_bucket_add(cp->hb_id, cp->hb_cnt, RS_FE_CP_HOURS, t,
                         RS_FE_HOUR_MS);
        rs_fe_bucket_add(cp->lb_id, cp->lb_cnt, RS_FE_CP_LBUCKETS, t,
                         f->lb_width);
        if (t > f->cps.seen[cp->h.slot]) f->cps.seen[cp->h.slot] = t;
    }
    rs_fe_evidx_add(&f->evidx, rs_hash_str(ev->id), ekey, ckey, t);

    if (flags_out) *flags_out = flags;
    return RS_OK;
}

/* ------------------------------------------------------------------ labels */

rs_err_t rs_features_label(rs_features_t *f, const rs_label_t *lb) {
    int64_t pos = rs_fe_evidx_pos(&f->evidx, rs_hash_str(lb->event_id));
    if (pos < 0) {
        f->st.labels_unknown++;
        return RS_ERR_NOTFOUND;
    }
    rs_fe_evref_t *r = &f->evidx.ring[f->evidx.index[pos] - 1];
    if (r->labelled) {
        f->st.labels_duplicate++;
        return RS_OK;
    }
    r->labelled = 1;
    f->st.labels_applied++;
    if (!(lb->value >= 0.5)) return RS_OK;

    /* A label cannot arrive before its event. */
    int64_t arr = lb->label_time_ms > 0 ? lb->label_time_ms : f->wm;
    if (arr < r->t) arr = r->t;
    rs_fe_ent_t *ent = (rs_fe_ent_t *)rs_fe_get(f, &f->ents, r->ent);
    if (ent)
        rs_fe_ring_insert(ent->lab, sizeof(int64_t), RS_FEATURES_ENT_LABELS,
                          &ent->lab_head, &ent->lab_n, &arr);
    if (r->cp) {
        rs_fe_cp_t *cp = (rs_fe_cp_t *)rs_fe_get(f, &f->cps, r->cp);
        if (cp)
            rs_fe_ring_insert(cp->lab, sizeof(int64_t), RS_FEATURES_CP_LABELS,
                              &cp->lab_head, &cp->lab_n, &arr);
    }
    return RS_OK;
}

/* ----------------------------------------------------------------- reasons */

static int rs_fe_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rs_fe_fmt(char *buf, size_t size, const char *fmt, ...) {
    if (!buf || !size) return 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? n : (int)size - 1;
}

static const char *rs_fe_plural(double v) { return fabs(v - 1.0) < 0.5 ? "" : "s"; }

static int rs_fe_reason_count(char *buf, size_t size, float value,
                              const char *what, const char *when) {
    double v = value;
    return rs_fe_fmt(buf, size, "%.0f %s%s %s", v, what, rs_fe_plural(v), when);
}

int rs_features_reason(const rs_features_t *f, int i, float value, char *buf,
                       size_t size) {
    if (i < 0 || i >= f->dim) return -1;
    double v = value;
    const char *w = f->window_words;
    switch (i) {
    case RS_FE_AMOUNT_LOG:
        return rs_fe_fmt(buf, size, "amount %.2f", expm1(v));
    case RS_FE_CNT_10M:
        return rs_fe_reason_count(buf, size, value, "event", "in the last 10 minutes");
    case RS_FE_CNT_1H:
        return rs_fe_reason_count(buf, size, value, "event", "in the last hour");
    case RS_FE_CNT_24H:
        return rs_fe_reason_count(buf, size, value, "event", "in the last 24 hours");
    case RS_FE_CNT_7D:
        return rs_fe_reason_count(buf, size, value, "event", "in the last 7 days");
    case RS_FE_SUM_24H:
        return rs_fe_fmt(buf, size, "%.2f in total over the last 24 hours", v);
    case RS_FE_MEAN_7D:
        return rs_fe_fmt(buf, size, "7-day mean amount %.2f", v);
    case RS_FE_STD_7D:
        return rs_fe_fmt(buf, size, "7-day amount spread %.2f", v);
    case RS_FE_RATIO_7D:
        return rs_fe_fmt(buf, size, "amount %.1fx the 7-day mean", v);
    case RS_FE_Z_7D:
        return rs_fe_fmt(buf, size, "amount %.1f standard deviations %s the 7-day mean",
                         fabs(v), v < 0 ? "below" : "above");
    case RS_FE_SINCE_LAST: {
        double s = expm1(v);
        if (s >= RS_FE_SINCE_NONE_S * 0.999)
            return rs_fe_fmt(buf, size, "first event of this entity");
        if (s < 120) return rs_fe_fmt(buf, size, "%.0f seconds since the previous event", s);
        if (s < 7200)
            return rs_fe_fmt(buf, size, "%.0f minutes since the previous event", s / 60);
        if (s < 172800)
            return rs_fe_fmt(buf, size, "%.1f hours since the previous event", s / 3600);
        return rs_fe_fmt(buf, size, "%.1f days since the previous event", s / 86400);
    }
    case RS_FE_CP_DISTINCT_24H:
        return rs_fe_fmt(buf, size, "%.0f distinct counterpart%s in the last 24 hours", v,
                         fabs(v - 1.0) < 0.5 ? "y" : "ies");
    case RS_FE_CP_NEW:
        return rs_fe_fmt(buf, size, v >= 0.5 ? "first payment at this counterparty"
                                             : "known counterparty");
    case RS_FE_SMALL_1H:
        return rs_fe_reason_count(buf, size, value, "small amount", "in the last hour");
    case RS_FE_ENT_FRAUD:
        return rs_fe_fmt(buf, size, "%.0f confirmed fraud%s on this entity in the last %s",
                         v, rs_fe_plural(v), w);
    case RS_FE_CP_CNT_24H:
        return rs_fe_reason_count(buf, size, value, "event",
                                  "at this counterparty in the last 24 hours");
    case RS_FE_CP_FRAUD_RATE:
        return rs_fe_fmt(buf, size, "counterparty fraud rate %.0f%% over %s", v * 100.0,
                         w);
    default: break;
    }
    int k = (i - RS_FE__BASE) / 2;
    const char *s = f->sens_name[k];
    if ((i - RS_FE__BASE) % 2 == 0) {
        if (v == 0) return rs_fe_fmt(buf, size, "%s at its recent mean", s);
        return rs_fe_fmt(buf, size, "%s %.3g %s its recent mean", s, fabs(v),
                         v > 0 ? "above" : "below");
    }
    if (v == 0) return rs_fe_fmt(buf, size, "%s steady", s);
    return rs_fe_fmt(buf, size, "%s %s %.3g per hour", s, v > 0 ? "rising" : "falling",
                     fabs(v));
}

/* ------------------------------------------------------------------- stats */

void rs_features_stats(const rs_features_t *f, rs_features_stats_t *st) {
    *st = f->st;
    st->entity_keys = f->ents.used;
    st->cp_keys = f->cps.used;
    st->watermark_ms = f->wm == INT64_MIN ? 0 : f->wm;
}
