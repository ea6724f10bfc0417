/* features_int.h -- private structures of features/ (engine, specs,
 * checkpoints).  Not for use outside the features module. */
#ifndef RS_FEATURES_INT_H
#define RS_FEATURES_INT_H

#include "features/features.h"

#include <math.h>
#include <stdio.h>

#define RS_FE_MIN_MS   60000LL
#define RS_FE_HOUR_MS  3600000LL
#define RS_FE_DAY_MS   86400000LL
#define RS_FE_DESC_MAX 256
/* base_noise's sampling error for normal noise (docs/features.md).  The
 * differences of successive readings are not independent: d_i and d_i+1
 * share a reading (correlation -1/2), so |d_i| and |d_i+1| correlate
 * (0.224) and so do their signs about the median (0.106).  The sd of the
 * log median of n such |d| is RS_FE_NOISE_K_WIN / sqrt(n): 1.1664 (the
 * asymptotic 1 / (2 f(m) m) of independent ones, m = 0.6745 the median of
 * |N(0, 1)|, f = 2 phi its density) x sqrt(1 + 2 x 0.106); the variance of
 * the log mean of m of them is RS_FE_NOISE_V_BASE / m: (pi/2 - 1) x (1 + 2
 * x 0.224).  Simulated (10^5 windows of 47 differences): sd 0.187 against
 * 1.2845 / sqrt 47 = 0.187 (the independent formula says 0.170). */
#define RS_FE_NOISE_K_WIN  1.2845
#define RS_FE_NOISE_V_BASE 0.8264
/* The sampling sd of base_noise's log ratio for nd differences in the
 * window and m in the baseline (m = 0: a baseline known exactly). */
static inline double rs_fe_noise_se(int nd, double m) {
    return sqrt(RS_FE_NOISE_K_WIN * RS_FE_NOISE_K_WIN / nd +
                (m > 0 ? RS_FE_NOISE_V_BASE / m : 0));
}

/* What an event field reference points at. */
typedef enum rs_fe_kind_e {
    RS_FE_K_ENTITY = 0, RS_FE_K_COUNTERPARTY, RS_FE_K_TYPE, RS_FE_K_CATEG,
    RS_FE_K_AMOUNT, RS_FE_K_NUMERIC
} rs_fe_kind_t;

/* Common head of every key slot.  Followed in the pool by
 *   item[history]     item = {int64 t; float v[nv]; uint32 aux[na]}
 *   rs_fe_lab_t lab[labels]   (only if the table has label aggregations)
 *   rs_fe_bkt_t bkt[nbkt], then rec[nrec] {arr, et}  (bucketed windows)
 *   rs_fe_base_t base[nbase]  (baselines: one per value)
 * The last-seen time lives in the table's compact seen[] array. */
typedef struct rs_fe_hdr_s {
    uint64_t key;        /* 64-bit id hash; 0 = free slot */
    uint32_t slot;       /* own index in the pool */
    uint16_t ev_head, ev_n;
    uint16_t lab_head, lab_n;
    uint16_t rec_head, rec_n;  /* ring of recent bucket labels (by arrival) */
} rs_fe_hdr_t;           /* 24 bytes */

typedef struct rs_fe_lab_s {
    int64_t et;          /* labelled event's time (ring order) */
    int64_t arr;         /* arrival time */
} rs_fe_lab_t;

/* One bucket of a bucketed key: the events whose time falls in
 * [b * bkt_ms, (b + 1) * bkt_ms), b = b1 - 1 (b1 == 0: empty).  Bucket b
 * lives at index b % nbkt; a newer bucket overwrites an older one. */
typedef struct rs_fe_bkt_s {
    int32_t b1;          /* bucket number + 1; 0 = empty */
    uint32_t n;          /* events */
    uint32_t nv;         /* of which with a finite value */
    uint32_t fraud;      /* fraud labels applied to its events */
    double sum;          /* of the finite values */
} rs_fe_bkt_t;           /* 24 bytes */

/* Running statistics of one value (Welford): readings, mean, sum of
 * squared deviations. */
typedef struct rs_fe_base_s {
    double n, mean, m2;
} rs_fe_base_t;          /* 24 bytes */

/* A key table: slot pool + open-addressing index of slot numbers. */
typedef struct rs_fe_tab_s {
    uint8_t *pool;       /* [cap][slot_size] */
    int64_t *seen;       /* [cap] largest event time; INT64_MAX when free */
    size_t slot_size;
    uint32_t cap, used;
    uint32_t *index;     /* [mask + 1]: slot + 1, 0 = empty */
    uint32_t mask;
    uint32_t *freelist;  /* [cap] */
    uint32_t nfree;
    uint32_t cursor;     /* sweep / eviction probe position */
    /* geometry */
    char key[RS_NAME_MAX];
    rs_fe_kind_t kkind;
    int nv, na;
    char vname[RS_FEATURES_MAX_VALUES][RS_NAME_MAX];
    rs_fe_kind_t vkind[RS_FEATURES_MAX_VALUES];
    char aname[RS_FEATURES_MAX_AUX][RS_NAME_MAX];
    rs_fe_kind_t akind[RS_FEATURES_MAX_AUX];
    uint32_t hist;       /* ring capacity */
    uint32_t nlab;       /* label ring capacity (0: none) */
    uint32_t nbkt;       /* buckets per slot (0: none) */
    uint32_t nrec;       /* with buckets: the newest fraud labels counted
                          * in them, by arrival {arr, et} (labels_per_key),
                          * so one applied before its arrival time is not
                          * counted for an event before that time */
    int64_t bkt_ms;      /* their width */
    uint32_t nbase;      /* baselines per slot: nv if a spec of the key has
                          * baseline aggregations, 2 nv if one has
                          * base_noise (then [nv + v]: statistics of
                          * |x - previous reading| of value v), else 0 */
    rs_fe_base_t fleet[2 * RS_FEATURES_MAX_VALUES]; /* every key's readings
                          * (and their differences, as above) */
    int bkt_vi;          /* the value index they sum */
    size_t item_size;    /* 8 + 4 (nv + na), rounded up to 8 */
    uint64_t *ck_done;   /* checkpoint: slot written (bitmap) */
    uint16_t *part;      /* [cap] input partition + 1 of the slot's newest
                          * event (0: unknown); entity table only, the
                          * others stay 0 (instance-wide state)         */
} rs_fe_tab_t;

/* A compiled spec. */
typedef struct rs_fe_cspec_s {
    rs_features_spec_t s;
    int tab, vi, ai;     /* table, value index, aux index (-1) */
    int out0, nout;
    uint8_t agg[RS_FEATURES_AGG__CNT];
    uint32_t need;       /* RS_FE_NEED_*: which passes are needed */
} rs_fe_cspec_t;

#define RS_FE_NEED_SCAN   0x1u  /* select window items (count, ...)       */
#define RS_FE_NEED_VALUES 0x2u  /* accumulate values (sum, mean, ...)      */

/* Event index entry: routes a label to its keys. */
typedef struct rs_fe_evref_s {
    uint64_t id;         /* hash of the event id */
    int64_t t;           /* event time */
    uint64_t keys[RS_FEATURES_MAX_TABLES]; /* 0 = none */
    uint32_t labelled;
    uint32_t part;       /* input partition of the event + 1 (0: unknown,
                          * e.g. from a checkpoint of before the tags) */
} rs_fe_evref_t;         /* 56 bytes */

typedef struct rs_fe_evidx_s {
    rs_fe_evref_t *ring; /* [cap], FIFO by insertion */
    uint32_t cap, head, n;
    uint32_t *index;     /* [mask + 1]: ring position + 1 */
    uint32_t mask;
    uint64_t *ck_done;   /* checkpoint: entry written (bitmap) */
} rs_fe_evidx_t;

/* An active checkpoint. */
typedef struct rs_fe_ckpt_s {
    int active;
    int fd;
    char path[1024], tmp[1040];
    uint8_t *buf;        /* [RS_FE_CK_BLOCK] block being filled */
    size_t blen;         /* bytes in buf */
    uint8_t **blocks;    /* [nblocks] full blocks, checksummed, not yet
                          * written: the file is written by commit(), off
                          * the scoring thread */
    size_t nblocks, cap_blocks, last_len; /* last block's length */
    uint64_t body_len;
    uint32_t crc;
    uint64_t nkeys, nevid;
    uint32_t ev_head0, ev_n0;
    int64_t wm0;
    rs_features_stats_t st0;
    uint64_t blob_len;
    int cur_tab;         /* step cursor: table (ntabs = event index) */
    uint32_t cur_pos;
} rs_fe_ckpt_t;

#define RS_FE_CK_BLOCK (1u << 20)

struct rs_features_s {
    rs_features_conf_t conf;
    int nspec;
    rs_fe_cspec_t spec[RS_FEATURES_MAX_SPECS];
    int ntab;
    rs_fe_tab_t tab[RS_FEATURES_MAX_TABLES];
    int ent_tab;                          /* table keyed by entity, or -1 */
    int scope;                            /* RS_FEATURES_SCOPE_*: the tables
                                           * process() computes and updates */
    int dim;
    char (*names)[RS_FEATURES_NAME_MAX];  /* [dim] */
    char (*descs)[RS_FE_DESC_MAX];        /* [dim] */
    int16_t *out_spec;                    /* [dim] spec of each feature */
    uint8_t *out_agg;                     /* [dim] its aggregation */
    uint64_t fingerprint;
    uint32_t maxhist;
    int has_cal;                          /* some spec has calendar aggs */
    struct rs_tz_s *tz;                   /* conf.timezone (has_cal only) */
    int64_t tz_from, tz_until;            /* cached offset interval */
    int32_t tz_off;                       /* its UTC offset, seconds */
    /* calendar of the event being processed (has_cal only) */
    double cal_hour;                      /* local fractional hour */
    int cal_dow;                          /* 0 Monday .. 6 Sunday */

    rs_fe_evidx_t evidx;
    uint64_t *gone_id;                    /* [gone_cap] index entries pushed
                                           * out since the last take (ids) */
    int32_t *gone_part;                   /* [gone_cap] their partitions   */
    uint32_t ngone, gone_cap;             /* 0 cap: not tracked            */
    uint64_t gone_lost;                   /* pushed out beyond gone_cap    */
    uint64_t *gent_key;                   /* [gent_cap] entity slots that
                                           * expired or were evicted since
                                           * the last take (changelog
                                           * tombstones; issue 13)         */
    int32_t *gent_part;                   /* [gent_cap] their partitions   */
    uint32_t ngent, gent_cap;             /* 0 cap: not tracked            */
    uint64_t gent_lost;                   /* beyond gent_cap               */
    int32_t cur_part;                     /* partition of the events being
                                           * processed (rs_features_set_
                                           * partition); -1: none          */

    /* per-event scratch */
    uint32_t *sel;                        /* [maxhist + 1] selected items */
    double *dif;                          /* [maxhist + 1] a window's
                                           * |differences| (base_noise) */
    uint32_t *dset_key, *dset_gen;        /* [dmask + 1] distinct set */
    uint32_t dmask, dgen;

    int64_t wm;                           /* watermark: max event time */
    int64_t t0;                           /* earliest event time seen: the
                                           * state covers [t0, wm];
                                           * INT64_MIN: unknown (restored
                                           * from an older checkpoint) */
    rs_features_stats_t st;
    float *first;                         /* [dim] first event's vector */
    uint8_t *varied;                      /* [dim] 1: differed from it once */
    rs_fe_ckpt_t ck;
    struct rs_fe_words_s *words;          /* nouns and baselines (words.c) */
    struct rs_opcond_s *opc;              /* operating conditions, or NULL
                                           * (features.setting_fields)    */
};

/* features_spec.c */
rs_err_t rs_fe_compile(rs_features_t *f, char *errstr, size_t errstr_size);
rs_fe_kind_t rs_fe_field_kind(const char *name, int as_value);

/* features_words.c: nouns and baselines for rs_features_words/reason,
 * built at rs_features_new (RS_ERR_CONFIG for bad `nouns`). */
typedef struct rs_fe_words_s rs_fe_words_t;
rs_err_t rs_fe_words_new(rs_features_t *f, char *errstr, size_t errstr_size);
void rs_fe_words_destroy(rs_fe_words_t *w);
/* rs_features_reason's reference (one rs_fmt_snprintf per case): the
 * same text, slower; for the tests (features_words.c). */
int rs_fe_reason_ref(const rs_features_t *f, int i, const float *x,
                     char *buf, size_t size);

/* features_opcond.c: f->opc from features.setting_fields (none if empty;
 * RS_ERR_CONFIG naming the key).  After rs_fe_compile. */
rs_err_t rs_fe_opcond_new(rs_features_t *f, char *errstr, size_t errstr_size);

/* features.c (used by the checkpoint code) */
uint32_t rs_fe_tab_alloc(rs_fe_tab_t *tab, uint64_t key, uint64_t *evictions);
int64_t rs_fe_tab_find(const rs_fe_tab_t *tab, uint64_t key);
void rs_fe_reset(rs_features_t *f);
void rs_fe_evidx_index(rs_fe_evidx_t *x, uint32_t pos);
void rs_fe_tab_remove(rs_features_t *f, int t, uint32_t s);
int64_t rs_fe_evidx_find(const rs_fe_evidx_t *x, uint64_t id);
void rs_fe_evidx_rebuild(rs_fe_evidx_t *x);
void rs_fe_evidx_put(rs_features_t *f, const rs_fe_evref_t *r);

/* features_ckpt.c: one key record (type byte 1) at body[*off], format
 * `version` (1: no partition tag; 2: u32 partition + 1 and u32 0 after
 * the 24-byte head), loaded into its table.  upsert: a key already present
 * is replaced (partition streams); else it is an error (checkpoints).
 * part >= 0 overrides the record's tag.  NULL on success (*off moved past
 * the record), else why (in why[] or static).  On an error the table may
 * hold the record half-loaded: the caller resets or drops. */
const char *rs_fe_ck_key_rec(rs_features_t *f, const uint8_t *body,
                             uint64_t len, uint64_t *off, uint32_t version,
                             int upsert, int32_t part, uint64_t rec,
                             char *why, size_t why_size);
/* The bytes of slot s of table t as a key record (format 2) through
 * put(ctx, bytes, n). */
void rs_fe_ck_key_emit(const rs_features_t *f, int t, uint32_t s,
                       void (*put)(void *ctx, const void *p, size_t n),
                       void *ctx);
static inline rs_fe_hdr_t *rs_fe_slot(const rs_fe_tab_t *tab, uint32_t s) {
    return (rs_fe_hdr_t *)(tab->pool + (size_t)s * tab->slot_size);
}
static inline uint8_t *rs_fe_items(const rs_fe_tab_t *tab, rs_fe_hdr_t *h) {
    (void)tab;
    return (uint8_t *)(h + 1);
}
static inline rs_fe_lab_t *rs_fe_labs(const rs_fe_tab_t *tab, rs_fe_hdr_t *h) {
    return (rs_fe_lab_t *)((uint8_t *)(h + 1) + tab->hist * tab->item_size);
}
static inline rs_fe_bkt_t *rs_fe_bkts(const rs_fe_tab_t *tab, rs_fe_hdr_t *h) {
    return (rs_fe_bkt_t *)((uint8_t *)(h + 1) + tab->hist * tab->item_size +
                           tab->nlab * sizeof(rs_fe_lab_t));
}
static inline rs_fe_lab_t *rs_fe_recs(const rs_fe_tab_t *tab, rs_fe_hdr_t *h) {
    return (rs_fe_lab_t *)(rs_fe_bkts(tab, h) + tab->nbkt);
}
static inline rs_fe_base_t *rs_fe_bases(const rs_fe_tab_t *tab, rs_fe_hdr_t *h) {
    return (rs_fe_base_t *)(rs_fe_recs(tab, h) + tab->nrec);
}
/* floor(a / b) for b > 0 */
static inline int64_t rs_fe_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return q - (a % b != 0 && a < 0);
}

/* features_ckpt.c: copy-before-write hooks (cheap no-ops when idle) */
void rs_fe_ck_touch_slot(rs_features_t *f, int tab, uint32_t s);
void rs_fe_ck_touch_evid(rs_features_t *f, uint32_t pos);
static inline void rs_fe_touch_slot(rs_features_t *f, int tab, uint32_t s) {
    if (f->ck.active) rs_fe_ck_touch_slot(f, tab, s);
}
static inline void rs_fe_touch_evid(rs_features_t *f, uint32_t pos) {
    if (f->ck.active) rs_fe_ck_touch_evid(f, pos);
}

#endif /* RS_FEATURES_INT_H */
