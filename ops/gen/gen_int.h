/* gen_int.h -- private state of the generator (see gen.h).
 *
 * The simulation is a discrete-event loop over one binary min-heap of
 * scheduled items ordered by (time, insertion sequence):
 *
 *   GEN_IT_CARD      card `idx` makes its next genuine transaction
 *   GEN_IT_PATSTART  fraud pattern `idx` starts its next episode
 *   GEN_IT_EPISODE   episode slot `idx` makes its next fraud transaction
 *   GEN_IT_MACHINE   machine `idx` takes its next reading (or fails)
 *   GEN_IT_LABEL     a label for event number `no` of entity `idx`
 *
 * Popping an item emits at most one record and pushes its successors, all
 * at times >= the popped time, which is what keeps the output ordered.
 * The heap holds one item per entity, one per active episode or pattern,
 * and one per label in flight -- that is the memory bound.
 *
 * Random streams: rng_world builds the world, rng_card drives genuine card
 * activity and sensor readings, rng_fraud drives the fraud patterns and
 * rng_label the label delays, so the genuine background is the same
 * whatever the fraud rates or label settings.
 */
#ifndef RS_GEN_INT_H
#define RS_GEN_INT_H

#include "gen.h"

#define GEN_DAY_MS 86400000LL
#define GEN_HOUR_MS 3600000LL
#define GEN_MIN_MS 60000LL

#define GEN_RING 32          /* recent genuine visitors kept per merchant */
#define GEN_NCOUNTRY 12
#define GEN_NMCC 14
#define GEN_MAX_SENSORS 8
#define GEN_NPAT_CARDS 4     /* patterns 1..4 */

enum {
    GEN_IT_CARD = 0,
    GEN_IT_PATSTART = 1,
    GEN_IT_EPISODE = 2,
    GEN_IT_MACHINE = 3,
    GEN_IT_LABEL = 4
};

/* 32 bytes.  key = seq << 24 | kind << 16 | pattern << 8 | value: ordering
 * by key is insertion order (seq has 40 bits, ~1e12 pushes). */
typedef struct gen_item_s {
    int64_t t;
    uint64_t key;
    uint64_t no;        /* label: number of the labelled event           */
    uint32_t idx;       /* card / pattern / episode slot / machine       */
    uint32_t episode;   /* label: episode of the labelled event          */
} gen_item_t;

#define GEN_IT_KIND(it) ((int)(((it)->key >> 16) & 0xff))
#define GEN_IT_PAT(it) ((int)(((it)->key >> 8) & 0xff))
#define GEN_IT_VAL(it) ((int)((it)->key & 0xff))

/* A weighted pick list: idx[i] with cumulative weights cum[i] (cum[n-1] is
 * the total). */
typedef struct gen_pick_s {
    uint32_t *idx;
    double *cum;
    uint32_t n;
} gen_pick_t;

typedef struct gen_card_s {
    double median;          /* median amount                              */
    double sigma;           /* log-sd of amounts                          */
    double rate_max;        /* thinning bound, events per ms              */
    double p_trip;          /* chance that a genuine txn starts a trip    */
    int64_t trip_end_ms;    /* on a trip while t < trip_end_ms            */
    uint64_t bloom[2];      /* merchants ever visited (or preferred)      */
    uint32_t pref_off;      /* preferred merchants: g->pref[off..off+n)   */
    uint8_t n_pref;
    uint8_t home;           /* country index                              */
    uint8_t trip_country;
    int8_t shift;           /* chronotype, hours added to the local time  */
} gen_card_t;

typedef struct gen_merchant_s {
    float pop;              /* popularity weight                          */
    uint8_t mcc, country, online;
    uint32_t ring_pos;      /* visits recorded so far                     */
    uint32_t breach_id;     /* lasting breach (compromise_duration): its
                             * episode id, and until when it lasts        */
    int64_t breach_until_ms;
} gen_merchant_t;

/* A recent genuine visit to a merchant (the breach window of pattern 3). */
typedef struct gen_visit_s {
    uint32_t card;
    int32_t t_min;          /* minutes since start                        */
} gen_visit_t;

typedef struct gen_episode_s {
    double gap_ms;          /* mean gap between its transactions          */
    uint32_t card;
    uint32_t id;            /* episode id shared by all its events        */
    uint32_t merch[3];      /* testing: merchants; compromised: [0] = the
                             * breached merchant (never used for fraud)   */
    uint32_t next_free;     /* free-list link                             */
    int16_t remaining;      /* transactions still to make                 */
    uint8_t pattern;
    uint8_t n_merch;
    uint8_t big;            /* testing: ends with a large purchase        */
    uint8_t country;        /* takeover: the attacker's country           */
} gen_episode_t;

typedef struct gen_machine_s {
    double base[GEN_MAX_SENSORS];   /* healthy mean                        */
    double shift[GEN_MAX_SENSORS];  /* drift at the failure, absolute      */
    double load;                    /* AR(1) load, stationary sd 1         */
    int64_t drift_start_ms, fail_ms;
    uint32_t site;
    uint32_t episode;               /* id of the coming failure            */
    uint8_t type;
    uint8_t mode;                   /* pattern of the coming failure       */
    uint8_t phase_h;                /* daily-cycle phase (site)            */
    uint8_t shape;                  /* degradation of the coming failure:
                                     * 0 drift, 1 step, 2 noisy            */
    uint8_t regime;                 /* operating condition (gen.conditions) */
    int64_t step_ms;                /* shape step: when the step comes     */
} gen_machine_t;

struct rs_gen_s {
    rs_gen_conf_t conf;             /* resolved copy                       */
    int64_t start_ms, end_ms;       /* end = INT64_MAX when unlimited      */
    rs_rng_t rng_world, rng_card, rng_fraud, rng_label;
    rs_rng_t rng_set;               /* sensors: setting noise (conditions) */

    gen_item_t *heap;               /* [heap_cap], min-heap of heap_n      */
    size_t heap_n, heap_cap;
    uint64_t seq;

    uint64_t ev_no;                 /* number of the next event (1..)      */
    int events_done;                /* no more events will be emitted      */
    int finished;
    uint32_t episode_seq;
    rs_gen_stats_t st;

    /* cards */
    gen_card_t *cards;              /* [n_cards]                           */
    uint32_t n_cards;
    uint32_t *pref;                 /* preferred merchants, all cards      */
    gen_merchant_t *merch;          /* [n_merch]                           */
    uint32_t n_merch;
    gen_visit_t *ring;              /* [n_merch][GEN_RING]                 */
    gen_pick_t by_country[GEN_NCOUNTRY], online, all, weak, bigticket;
    double rhythm[24], rhythm_max;  /* activity by local hour, mean 1      */
    double lambda_ms;               /* genuine txns per ms, all cards      */
    gen_episode_t *eps;             /* [eps_cap] pool                      */
    uint32_t eps_cap, eps_free;

    /* sensors */
    gen_machine_t *mach;            /* [n_mach]                            */
    uint32_t n_mach;
    int n_sensors;
    int n_settings;                 /* setting1..3 after the sensors (0
                                     * without gen.conditions)             */

    char csv_header[512];
};

/* gen.c */
void gen_push(rs_gen_t *g, int64_t t, int kind, int pattern, int value,
              uint64_t no, uint32_t idx, uint32_t episode);
/* Schedule the label of the event being emitted (number g->ev_no) at
 * base_ms + delay_ms * (1 + jitter * U(-1,1)). */
void gen_label(rs_gen_t *g, int64_t base_ms, int64_t delay_ms, uint32_t ent,
               int value, int pattern, uint32_t episode);
size_t gen_put_u64(char *dst, uint64_t v);

static inline size_t gen_put_id(char *dst, const char *prefix, size_t plen,
                                uint64_t v) {
    for (size_t i = 0; i < plen; i++) dst[i] = prefix[i];
    return plen + gen_put_u64(dst + plen, v);
}

/* gen_cards.c: build the world / handle one popped item.  step returns 1
 * when it wrote an event into rec (is_fraud/pattern/episode set). */
rs_err_t gen_cards_init(rs_gen_t *g, char *errstr, size_t errstr_size);
void gen_cards_free(rs_gen_t *g);
int gen_cards_step(rs_gen_t *g, const gen_item_t *it, rs_gen_rec_t *rec);
const char *gen_mcc_name(int mcc);

/* gen_sensors.c */
rs_err_t gen_sensors_init(rs_gen_t *g, char *errstr, size_t errstr_size);
void gen_sensors_free(rs_gen_t *g);
int gen_sensors_step(rs_gen_t *g, const gen_item_t *it, rs_gen_rec_t *rec);
const char *gen_sensor_name(int i);

#endif /* RS_GEN_INT_H */
