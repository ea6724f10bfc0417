/* gen_cards.c -- the cards world: cards, merchants, genuine spending and
 * the four fraud patterns.  See docs/generator.md for the model.
 *
 * Where the signal of each pattern lives (what a model must look at):
 *   card testing   the card's recent history (a run of tiny amounts at one
 *                  to three merchants within minutes) and the testing
 *                  merchants' history (tiny amounts from many cards);
 *   takeover       amounts far above the card's own median, at merchants
 *                  the card never used, in a country that is not its home
 *                  -- none of which is visible in the event alone;
 *   compromised    the card visited a breached merchant days earlier, and
 *                  other customers of that merchant are being defrauded;
 *   velocity       many transactions in a short time (counts over windows).
 */
#include "gen_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

typedef struct gen_country_s {
    const char *code;
    double weight;
    int tz;             /* UTC offset, hours */
} gen_country_t;

static const gen_country_t gen_countries[GEN_NCOUNTRY] = {
    {"US", 0.30, -5}, {"GB", 0.12, 0}, {"DE", 0.10, 1}, {"FR", 0.08, 1},
    {"ES", 0.06, 1},  {"IT", 0.06, 1}, {"NL", 0.05, 1}, {"BR", 0.05, -3},
    {"IN", 0.05, 5},  {"JP", 0.04, 9}, {"CA", 0.05, -5}, {"AU", 0.04, 10},
};

typedef struct gen_mcc_s {
    const char *name;   /* categorical value (not the numeric code, so a
                         * CSV reader does not take it for a number)       */
    int code;           /* ISO 18245 merchant category code (docs only)    */
    double weight;      /* share of merchants                              */
    double online;      /* share of its merchants that sell online         */
    double mult;        /* price level relative to the card's median       */
} gen_mcc_t;

enum { MCC_GROCERY, MCC_RESTAURANT, MCC_FUEL, MCC_RETAIL, MCC_DEPT,
       MCC_ELECTRONICS, MCC_TRANSPORT, MCC_HOTEL, MCC_AIRLINE, MCC_DIGITAL,
       MCC_DIRECT, MCC_JEWELRY, MCC_PHARMACY, MCC_COFFEE };

static const gen_mcc_t gen_mccs[GEN_NMCC] = {
    {"grocery", 5411, 0.22, 0.05, 1.0},
    {"restaurant", 5812, 0.15, 0.05, 0.8},
    {"fuel", 5541, 0.10, 0.00, 1.1},
    {"retail", 5999, 0.12, 0.35, 1.2},
    {"department_store", 5311, 0.06, 0.30, 1.6},
    {"electronics", 5732, 0.04, 0.50, 4.0},
    {"transport", 4121, 0.07, 0.50, 0.6},
    {"hotel", 7011, 0.02, 0.60, 5.0},
    {"airline", 4511, 0.01, 0.90, 8.0},
    {"digital_goods", 5816, 0.08, 1.00, 0.4},
    {"direct_marketing", 5967, 0.03, 1.00, 0.9},
    {"jewelry", 5944, 0.01, 0.20, 6.0},
    {"pharmacy", 5912, 0.05, 0.10, 0.7},
    {"coffee", 5814, 0.04, 0.00, 0.2},
};

const char *gen_mcc_name(int mcc) {
    return mcc >= 0 && mcc < GEN_NMCC ? gen_mccs[mcc].name : "unknown";
}

/* Genuine activity by local hour (relative; normalised to mean 1). */
static const double gen_rhythm_raw[24] = {
    0.25, 0.15, 0.10, 0.08, 0.08, 0.15, 0.35, 0.60, 0.90, 1.10, 1.25, 1.40,
    1.60, 1.50, 1.30, 1.25, 1.30, 1.50, 1.65, 1.60, 1.35, 1.05, 0.70, 0.45};

/* Pattern parameters (documented in docs/generator.md). */
#define GEN_TEST_GAP_MS 20000.0          /* card testing: mean gap         */
#define GEN_TEST_BIG_GAP_MS (30.0 * GEN_MIN_MS)
#define GEN_TEST_BIG_P 0.4               /* ... then a large purchase      */
#define GEN_ATO_GAP_MS (45.0 * GEN_MIN_MS)
#define GEN_CMP_GAP_MS (30.0 * GEN_MIN_MS)
#define GEN_CMP_WINDOW_MIN (7 * 24 * 60) /* breach window                  */
#define GEN_CMP_SHARE 0.5                /* share of its cards defrauded   */
#define GEN_CMP_MAX_VICTIMS 20
#define GEN_CMP_MIN_VICTIMS 3
#define GEN_VEL_GAP_MS (4.0 * GEN_MIN_MS)
#define GEN_PREF_P 0.75                  /* genuine: visit a preferred one */
#define GEN_HOME_P 0.90                  /* else: home country vs online   */

/* Prior mean fraud events per episode, before the first one is planned. */
static const double gen_prior_events[GEN_NPAT_CARDS + 1] = {0, 13.5, 5.5,
                                                            20.0, 16.5};

/* ----------------------------------------------------------------- utils */

static inline double gen_u(rs_rng_t *r) { return rs_rng_uniform(r); }
static inline double gen_range(rs_rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * rs_rng_uniform(r);
}
static inline double gen_cents(double x) {
    double v = round(x * 100.0) / 100.0;
    return v < 0.01 ? 0.01 : v;
}

/* Local hour and day of week (Mon = 0) at UTC offset tz hours. */
static inline int gen_hour(int64_t t, int tz) {
    return (int)(((t / GEN_HOUR_MS) + tz + 48) % 24);
}
static inline int gen_dow(int64_t t, int tz) {
    return (int)(((t + tz * GEN_HOUR_MS) / GEN_DAY_MS + 3) % 7);
}

static inline void gen_bloom_add(gen_card_t *c, uint32_t m) {
    uint64_t h = (uint64_t)m * 0x9E3779B97F4A7C15ULL;
    c->bloom[(h >> 63) & 1] |= 1ULL << ((h >> 57) & 63);
}
static inline int gen_bloom_has(const gen_card_t *c, uint32_t m) {
    uint64_t h = (uint64_t)m * 0x9E3779B97F4A7C15ULL;
    return (c->bloom[(h >> 63) & 1] >> ((h >> 57) & 63)) & 1;
}

static void gen_pick_build(gen_pick_t *p, const rs_gen_t *g,
                           int (*want)(const gen_merchant_t *, int), int arg) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_merch; i++) n += want(&g->merch[i], arg) != 0;
    p->n = n;
    p->idx = n ? rs_malloc(n * sizeof(*p->idx)) : NULL;
    p->cum = n ? rs_malloc(n * sizeof(*p->cum)) : NULL;
    double acc = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n_merch; i++) {
        if (!want(&g->merch[i], arg)) continue;
        acc += g->merch[i].pop;
        p->idx[k] = i;
        p->cum[k] = acc;
        k++;
    }
}

static void gen_pick_free(gen_pick_t *p) {
    free(p->idx);
    free(p->cum);
    memset(p, 0, sizeof(*p));
}

/* Popularity-weighted pick from p (must be non-empty). */
static uint32_t gen_pick(const gen_pick_t *p, rs_rng_t *r) {
    double x = gen_u(r) * p->cum[p->n - 1];
    uint32_t lo = 0, hi = p->n - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return p->idx[lo];
}

/* First non-empty of up to three lists (`all` is never empty). */
static const gen_pick_t *gen_first(const rs_gen_t *g, const gen_pick_t *a,
                                   const gen_pick_t *b) {
    if (a && a->n) return a;
    if (b && b->n) return b;
    return &g->all;
}

static int gen_want_country(const gen_merchant_t *m, int k) {
    return m->country == k;
}
static int gen_want_online(const gen_merchant_t *m, int k) {
    RS_UNUSED(k);
    return m->online;
}
static int gen_want_all(const gen_merchant_t *m, int k) {
    RS_UNUSED(m);
    RS_UNUSED(k);
    return 1;
}
/* Card-testing merchants: small online sellers of digital goods / direct
 * marketing (about 1 in 7 of them is "weak": no 3-D Secure, say). */
static int gen_want_weak(const gen_merchant_t *m, int k) {
    RS_UNUSED(k);
    return m->online && (m->mcc == MCC_DIGITAL || m->mcc == MCC_DIRECT) &&
           m->pop < 0.6f;
}
static int gen_want_big(const gen_merchant_t *m, int k) {
    RS_UNUSED(k);
    return m->online && (m->mcc == MCC_ELECTRONICS || m->mcc == MCC_JEWELRY ||
                         m->mcc == MCC_AIRLINE);
}

static int gen_weighted(rs_rng_t *r, const double *w, int n, size_t stride) {
    double total = 0;
    for (int i = 0; i < n; i++)
        total += *(const double *)((const char *)w + (size_t)i * stride);
    double x = gen_u(r) * total;
    for (int i = 0; i < n; i++) {
        x -= *(const double *)((const char *)w + (size_t)i * stride);
        if (x < 0) return i;
    }
    return n - 1;
}

static int gen_pick_country(rs_rng_t *r) {
    return gen_weighted(r, &gen_countries[0].weight, GEN_NCOUNTRY,
                        sizeof(gen_country_t));
}

/* A genuine merchant for a card at home: preferred (skewed to the first
 * ones) or a popular one of its country or an online one. */
static uint32_t gen_genuine_merchant(const rs_gen_t *g, rs_rng_t *r,
                                     const gen_card_t *c, int with_pref) {
    double u = gen_u(r);
    if (with_pref && u < GEN_PREF_P) {
        double v = gen_u(r);
        uint32_t k = (uint32_t)(v * v * c->n_pref);
        if (k >= c->n_pref) k = c->n_pref - 1u;
        return g->pref[c->pref_off + k];
    }
    if (gen_u(r) < GEN_HOME_P)
        return gen_pick(gen_first(g, &g->by_country[c->home], NULL), r);
    return gen_pick(gen_first(g, &g->online, NULL), r);
}

/* ------------------------------------------------------------------ init */

static void gen_schedule_card(rs_gen_t *g, uint32_t ci, int64_t now) {
    gen_card_t *c = &g->cards[ci];
    rs_rng_t *r = &g->rng_card;
    int tz = gen_countries[now < c->trip_end_ms ? c->trip_country : c->home]
                 .tz + c->shift;
    /* Thinning of a Poisson process with rate rate_max * rhythm(h)/max. */
    int64_t t = now;
    for (int guard = 0; guard < 1000; guard++) {
        t += (int64_t)rs_rng_exp(r, c->rate_max) + 1;
        if (gen_u(r) * g->rhythm_max < g->rhythm[gen_hour(t, tz)]) break;
    }
    gen_push(g, t, GEN_IT_CARD, 0, 0, 0, ci, 0);
}

static void gen_schedule_pattern(rs_gen_t *g, int p, int64_t now,
                                 double planned_events) {
    const double share[GEN_NPAT_CARDS + 1] = {
        0, g->conf.card_testing_rate, g->conf.takeover_rate,
        g->conf.compromised_rate, g->conf.velocity_rate};
    if (share[p] <= 0) return;
    /* Renewal process: the gap after an episode of n events has mean
     * n / (share * lambda), so fraud events of pattern p arrive at
     * share * lambda in the long run whatever the episode sizes. */
    double rate = share[p] * g->lambda_ms / planned_events;
    int64_t t = now + (int64_t)rs_rng_exp(&g->rng_fraud, rate) + 1;
    gen_push(g, t, GEN_IT_PATSTART, p, 0, 0, (uint32_t)p, 0);
}

rs_err_t gen_cards_init(rs_gen_t *g, char *errstr, size_t errstr_size) {
    RS_UNUSED(errstr);
    RS_UNUSED(errstr_size);
    rs_rng_t *r = &g->rng_world;
    const rs_gen_conf_t *cf = &g->conf;

    double sum = 0, mx = 0;
    for (int h = 0; h < 24; h++) sum += gen_rhythm_raw[h];
    for (int h = 0; h < 24; h++) {
        g->rhythm[h] = gen_rhythm_raw[h] * 24.0 / sum;
        if (g->rhythm[h] > mx) mx = g->rhythm[h];
    }
    g->rhythm_max = mx;

    /* Merchants. */
    g->n_merch = (uint32_t)cf->counterparties;
    g->merch = rs_calloc(g->n_merch, sizeof(*g->merch));
    g->ring = rs_calloc((size_t)g->n_merch * GEN_RING, sizeof(*g->ring));
    for (uint32_t i = 0; i < g->n_merch; i++) {
        gen_merchant_t *m = &g->merch[i];
        m->mcc = (uint8_t)gen_weighted(r, &gen_mccs[0].weight, GEN_NMCC,
                                       sizeof(gen_mcc_t));
        m->country = (uint8_t)gen_pick_country(r);
        m->online = gen_u(r) < gen_mccs[m->mcc].online;
        m->pop = (float)exp(1.0 * rs_rng_normal(r));
    }
    for (int k = 0; k < GEN_NCOUNTRY; k++)
        gen_pick_build(&g->by_country[k], g, gen_want_country, k);
    gen_pick_build(&g->online, g, gen_want_online, 0);
    gen_pick_build(&g->all, g, gen_want_all, 0);
    gen_pick_build(&g->weak, g, gen_want_weak, 0);
    gen_pick_build(&g->bigticket, g, gen_want_big, 0);

    /* Cards. */
    g->n_cards = (uint32_t)cf->entities;
    g->cards = rs_calloc(g->n_cards, sizeof(*g->cards));
    g->pref = rs_malloc((size_t)g->n_cards * 20 * sizeof(*g->pref));
    uint32_t pref_n = 0;
    double lambda_day = 0;
    for (uint32_t i = 0; i < g->n_cards; i++) {
        gen_card_t *c = &g->cards[i];
        c->home = (uint8_t)gen_pick_country(r);
        c->median = cf->amount_median * exp(0.6 * rs_rng_normal(r));
        c->median = RS_MIN(RS_MAX(c->median, 2.0), 1e6);
        c->sigma = gen_range(r, 0.4, 0.8);
        double per_day = cf->tx_per_day * exp(0.6 * rs_rng_normal(r));
        per_day = RS_MIN(RS_MAX(per_day, 0.05), 30.0 * cf->tx_per_day);
        lambda_day += per_day;
        c->rate_max = per_day / (double)GEN_DAY_MS * g->rhythm_max;
        c->p_trip = cf->trips_per_year / 365.0 / per_day;
        c->shift = (int8_t)((int)rs_rng_below(r, 5) - 2);
        c->n_pref = (uint8_t)(5 + rs_rng_below(r, 16));
        c->pref_off = pref_n;
        for (int k = 0; k < c->n_pref; k++) {
            uint32_t m = 0;
            for (int tries = 0; tries < 4; tries++) {
                m = gen_genuine_merchant(g, r, c, 0);
                int dup = 0;
                for (int j = 0; j < k; j++)
                    dup |= g->pref[pref_n + (uint32_t)j] == m;
                if (!dup) break;
            }
            g->pref[pref_n + (uint32_t)k] = m;
            gen_bloom_add(c, m);
        }
        pref_n += c->n_pref;
    }
    g->lambda_ms = lambda_day / (double)GEN_DAY_MS;

    g->eps_cap = 256;
    g->eps = rs_calloc(g->eps_cap, sizeof(*g->eps));
    for (uint32_t i = 0; i < g->eps_cap; i++)
        g->eps[i].next_free = i + 1 < g->eps_cap ? i + 1 : UINT32_MAX;
    g->eps_free = 0;

    for (uint32_t i = 0; i < g->n_cards; i++)
        gen_schedule_card(g, i, g->start_ms);
    for (int p = 1; p <= GEN_NPAT_CARDS; p++)
        gen_schedule_pattern(g, p, g->start_ms + g->conf.warmup_ms,
                             gen_prior_events[p]);

    snprintf(g->csv_header, sizeof(g->csv_header),
             "id,type,entity_id,counterparty_id,event_time_ms,amount,"
             "hour_of_day,day_of_week,mcc,country,channel,label");
    return RS_OK;
}

void gen_cards_free(rs_gen_t *g) {
    for (int k = 0; k < GEN_NCOUNTRY; k++) gen_pick_free(&g->by_country[k]);
    gen_pick_free(&g->online);
    gen_pick_free(&g->all);
    gen_pick_free(&g->weak);
    gen_pick_free(&g->bigticket);
    free(g->cards);
    free(g->pref);
    free(g->merch);
    free(g->ring);
    free(g->eps);
    g->cards = NULL;
    g->pref = NULL;
    g->merch = NULL;
    g->ring = NULL;
    g->eps = NULL;
}

/* -------------------------------------------------------------- episodes */

static uint32_t gen_ep_alloc(rs_gen_t *g) {
    if (g->eps_free == UINT32_MAX) {
        uint32_t old = g->eps_cap;
        g->eps_cap *= 2;
        g->eps = rs_realloc(g->eps, g->eps_cap * sizeof(*g->eps));
        for (uint32_t i = old; i < g->eps_cap; i++)
            g->eps[i].next_free = i + 1 < g->eps_cap ? i + 1 : UINT32_MAX;
        g->eps_free = old;
    }
    uint32_t e = g->eps_free;
    g->eps_free = g->eps[e].next_free;
    memset(&g->eps[e], 0, sizeof(g->eps[e]));
    return e;
}

static void gen_ep_release(rs_gen_t *g, uint32_t e) {
    g->eps[e].next_free = g->eps_free;
    g->eps_free = e;
}

static double gen_ep_gap(const gen_episode_t *ep) {
    if (ep->pattern == RS_GEN_PAT_CARD_TESTING && ep->big &&
        ep->remaining == 1)
        return GEN_TEST_BIG_GAP_MS;
    return ep->gap_ms;
}

/* Plan episode(s) of pattern p at `now`; returns planned fraud events. */
static int gen_start_episode(rs_gen_t *g, int p, int64_t now) {
    rs_rng_t *r = &g->rng_fraud;
    uint32_t id = ++g->episode_seq;
    if (p == RS_GEN_PAT_COMPROMISED && g->conf.compromise_ms > 0) {
        /* A lasting breach: from now on, for compromise_duration, every
         * visitor's card is stolen with GEN_CMP_SHARE (gen_visit).  The
         * planned events (for the renewal process) are the expected ones:
         * the merchant's visits of the past week scaled to the duration. */
        const gen_card_t *c0 = &g->cards[rs_rng_below(r, g->n_cards)];
        uint32_t m = g->pref[c0->pref_off];
        gen_merchant_t *mm = &g->merch[m];
        int32_t now_min = (int32_t)((now - g->start_ms) / GEN_MIN_MS);
        uint32_t cnt = RS_MIN(mm->ring_pos, (uint32_t)GEN_RING), recent = 0;
        int32_t oldest = now_min;
        for (uint32_t k = 0; k < cnt; k++) {
            const gen_visit_t *v = &g->ring[(size_t)m * GEN_RING + k];
            if (now_min - v->t_min > GEN_CMP_WINDOW_MIN) continue;
            recent++;
            if (v->t_min < oldest) oldest = v->t_min;
        }
        if (recent < 2 || mm->breach_until_ms > now) {
            g->episode_seq--;      /* nothing happened; try again later */
            return 0;
        }
        double span_min = RS_MAX(now_min - oldest, 60);
        double visits = recent * ((double)g->conf.compromise_ms / GEN_MIN_MS) /
                        span_min;
        mm->breach_id = id;
        mm->breach_until_ms = now + g->conf.compromise_ms;
        g->st.episodes[p]++;
        int planned = (int)(visits * GEN_CMP_SHARE * 2.5);
        return planned > 0 ? planned : 1;
    }
    if (p == RS_GEN_PAT_COMPROMISED) {
        /* Breach a merchant that a random card uses most: its recent
         * genuine visitors are the stolen cards. */
        const gen_card_t *c0 = &g->cards[rs_rng_below(r, g->n_cards)];
        uint32_t m = g->pref[c0->pref_off];
        const gen_merchant_t *mm = &g->merch[m];
        int32_t now_min = (int32_t)((now - g->start_ms) / GEN_MIN_MS);
        uint32_t victims[GEN_RING];
        int nv = 0;
        uint32_t cnt = RS_MIN(mm->ring_pos, (uint32_t)GEN_RING);
        for (uint32_t k = 0; k < cnt; k++) {
            const gen_visit_t *v = &g->ring[(size_t)m * GEN_RING + k];
            if (now_min - v->t_min > GEN_CMP_WINDOW_MIN) continue;
            int dup = 0;
            for (int j = 0; j < nv; j++) dup |= victims[j] == v->card;
            if (!dup) victims[nv++] = v->card;
        }
        /* Each distinct recent visitor is defrauded with GEN_CMP_SHARE. */
        int planned = 0, chosen = 0;
        for (int j = 0; j < nv && chosen < GEN_CMP_MAX_VICTIMS; j++)
            if (gen_u(r) < GEN_CMP_SHARE) victims[chosen++] = victims[j];
        if (chosen < GEN_CMP_MIN_VICTIMS) {
            g->episode_seq--;      /* nothing happened; try again later */
            return 0;
        }
        for (int j = 0; j < chosen; j++) {
            uint32_t e = gen_ep_alloc(g);
            gen_episode_t *ep = &g->eps[e];
            ep->pattern = RS_GEN_PAT_COMPROMISED;
            ep->card = victims[j];
            ep->id = id;
            ep->merch[0] = m;
            ep->n_merch = 1;
            ep->remaining = (int16_t)(1 + rs_rng_below(r, 4));
            ep->gap_ms = GEN_CMP_GAP_MS;
            planned += ep->remaining;
            int64_t t = now + (int64_t)gen_range(r, 0.5 * GEN_DAY_MS,
                                                 5.0 * GEN_DAY_MS);
            gen_push(g, t, GEN_IT_EPISODE, p, 0, 0, e, id);
        }
        g->st.episodes[p]++;
        return planned;
    }

    uint32_t e = gen_ep_alloc(g);
    gen_episode_t *ep = &g->eps[e];
    ep->pattern = (uint8_t)p;
    ep->card = (uint32_t)rs_rng_below(r, g->n_cards);
    ep->id = id;
    const gen_card_t *c = &g->cards[ep->card];
    switch (p) {
    case RS_GEN_PAT_CARD_TESTING: {
        const gen_pick_t *wl = gen_first(g, &g->weak, &g->online);
        ep->n_merch = (uint8_t)(1 + rs_rng_below(r, 3));
        for (int k = 0; k < ep->n_merch; k++) ep->merch[k] = gen_pick(wl, r);
        ep->big = gen_u(r) < GEN_TEST_BIG_P;
        ep->remaining = (int16_t)(5 + rs_rng_below(r, 16) + ep->big);
        ep->gap_ms = GEN_TEST_GAP_MS;
        break;
    }
    case RS_GEN_PAT_TAKEOVER: {
        int k;
        do {
            k = (int)rs_rng_below(r, GEN_NCOUNTRY);
        } while (k == c->home);
        ep->country = (uint8_t)k;
        ep->remaining = (int16_t)(3 + rs_rng_below(r, 6));
        ep->gap_ms = GEN_ATO_GAP_MS;
        break;
    }
    default: /* velocity */
        ep->remaining = (int16_t)(8 + rs_rng_below(r, 18));
        ep->gap_ms = GEN_VEL_GAP_MS;
        break;
    }
    int planned = ep->remaining;
    int64_t t = now + (int64_t)rs_rng_exp(r, 1.0 / gen_ep_gap(ep)) + 1;
    gen_push(g, t, GEN_IT_EPISODE, p, 0, 0, e, id);
    g->st.episodes[p]++;
    return planned;
}

/* --------------------------------------------------------------- records */

static void gen_fill_tx(rs_gen_t *g, rs_gen_rec_t *rec, uint32_t ci,
                        uint32_t mi, int64_t t, double amount, int tz_online) {
    rs_event_t *ev = &rec->ev;
    const gen_merchant_t *m = &g->merch[mi];
    gen_put_id(ev->id, "tx-", 3, g->ev_no);
    memcpy(ev->type, "card_tx", 8);
    gen_put_id(ev->entity_id, "card-", 5, ci);
    gen_put_id(ev->counterparty_id, "m-", 2, mi);
    ev->event_time_ms = t;
    ev->amount = gen_cents(amount);
    /* Local time of the purchase: the shop's for pos, the card holder's
     * for online. */
    int tz = m->online ? tz_online : gen_countries[m->country].tz;
    ev->n_numeric = 2;
    memcpy(ev->numeric[0].name, "hour_of_day", 12);
    ev->numeric[0].value = gen_hour(t, tz);
    memcpy(ev->numeric[1].name, "day_of_week", 12);
    ev->numeric[1].value = gen_dow(t, tz);
    ev->n_categ = 3;
    memcpy(ev->categ[0].name, "mcc", 4);
    rs_strlcpy(ev->categ[0].value, gen_mccs[m->mcc].name, RS_CATVAL_MAX);
    memcpy(ev->categ[1].name, "country", 8);
    memcpy(ev->categ[1].value, gen_countries[m->country].code, 3);
    memcpy(ev->categ[2].name, "channel", 8);
    if (m->online) memcpy(ev->categ[2].value, "online", 7);
    else memcpy(ev->categ[2].value, "pos", 4);
}

static void gen_visit(rs_gen_t *g, uint32_t ci, uint32_t mi, int64_t t) {
    gen_merchant_t *m = &g->merch[mi];
    gen_visit_t *v = &g->ring[(size_t)mi * GEN_RING + m->ring_pos % GEN_RING];
    v->card = ci;
    v->t_min = (int32_t)((t - g->start_ms) / GEN_MIN_MS);
    m->ring_pos++;
    if (t < m->breach_until_ms) {
        /* a lasting breach: this card is stolen with GEN_CMP_SHARE (the
         * fraud stream draws, so the genuine background is unchanged) */
        rs_rng_t *r = &g->rng_fraud;
        if (gen_u(r) >= GEN_CMP_SHARE) return;
        uint32_t e = gen_ep_alloc(g);
        gen_episode_t *ep = &g->eps[e];
        ep->pattern = RS_GEN_PAT_COMPROMISED;
        ep->card = ci;
        ep->id = m->breach_id;
        ep->merch[0] = mi;
        ep->n_merch = 1;
        ep->remaining = (int16_t)(1 + rs_rng_below(r, 4));
        ep->gap_ms = GEN_CMP_GAP_MS;
        int64_t ts = t + (int64_t)gen_range(r, 0.5 * GEN_DAY_MS, 5.0 * GEN_DAY_MS);
        gen_push(g, ts, GEN_IT_EPISODE, RS_GEN_PAT_COMPROMISED, 0, 0, e,
                 m->breach_id);
    }
}

static void gen_truth(rs_gen_t *g, rs_gen_rec_t *rec, uint32_t ci, int fraud,
                      int pattern, uint32_t episode) {
    rec->is_fraud = fraud;
    rec->pattern = pattern;
    rec->episode = episode;
    if (fraud)
        gen_label(g, rec->ev.event_time_ms, g->conf.label_delay_ms, ci, 1,
                  pattern, episode);
    else if (g->conf.negative_labels)
        gen_label(g, rec->ev.event_time_ms, g->conf.label_delay_ms, ci, 0, 0,
                  0);
}

static int gen_genuine(rs_gen_t *g, const gen_item_t *it, rs_gen_rec_t *rec) {
    rs_rng_t *r = &g->rng_card;
    uint32_t ci = it->idx;
    gen_card_t *c = &g->cards[ci];
    int64_t t = it->t;
    if (t >= c->trip_end_ms && c->p_trip > 0 && gen_u(r) < c->p_trip) {
        int k;
        do {
            k = gen_pick_country(r);
        } while (k == c->home);
        c->trip_country = (uint8_t)k;
        c->trip_end_ms = t + (int64_t)gen_range(r, 2.0 * GEN_DAY_MS,
                                                10.0 * GEN_DAY_MS);
    }
    int away = t < c->trip_end_ms;
    uint32_t mi;
    if (away && gen_u(r) < 0.7 && g->by_country[c->trip_country].n)
        mi = gen_pick(&g->by_country[c->trip_country], r);
    else
        mi = gen_genuine_merchant(g, r, c, 1);
    double amount = c->median * gen_mccs[g->merch[mi].mcc].mult *
                    exp(c->sigma * rs_rng_normal(r)) * (away ? 1.3 : 1.0);
    if (amount < 0.5) amount = 0.5;
    int tz_card = gen_countries[away ? c->trip_country : c->home].tz;
    gen_fill_tx(g, rec, ci, mi, t, amount, tz_card);
    gen_truth(g, rec, ci, 0, 0, 0);
    gen_visit(g, ci, mi, t);
    gen_bloom_add(c, mi);
    gen_schedule_card(g, ci, t);
    return 1;
}

static int gen_fraud_step(rs_gen_t *g, const gen_item_t *it,
                          rs_gen_rec_t *rec) {
    rs_rng_t *r = &g->rng_fraud;
    uint32_t e = it->idx;
    gen_episode_t *ep = &g->eps[e];
    gen_card_t *c = &g->cards[ep->card];
    int64_t t = it->t;
    uint32_t mi = 0;
    double amount = 0;
    int tz_card = gen_countries[c->home].tz;

    switch (ep->pattern) {
    case RS_GEN_PAT_CARD_TESTING:
        if (ep->big && ep->remaining == 1) {
            mi = gen_pick(gen_first(g, &g->bigticket, &g->online), r);
            amount = exp(log(400.0) + 0.6 * rs_rng_normal(r));
        } else {
            mi = ep->merch[rs_rng_below(r, ep->n_merch)];
            amount = gen_range(r, 0.5, 3.0);
        }
        break;
    case RS_GEN_PAT_TAKEOVER: {
        /* New merchants of the attacker's country (the bloom filter has no
         * false negatives: a merchant it does not contain was never used
         * by this card). */
        const gen_pick_t *pl = gen_first(g, &g->by_country[ep->country], NULL);
        for (int tries = 0; tries < 64; tries++) {
            mi = gen_pick(pl, r);
            if (!gen_bloom_has(c, mi)) break;
        }
        amount = c->median * gen_range(r, 5.0, 30.0);
        tz_card = gen_countries[ep->country].tz;
        break;
    }
    case RS_GEN_PAT_COMPROMISED:
        /* Stolen card data used elsewhere, mostly card-not-present. */
        for (int tries = 0; tries < 16; tries++) {
            mi = gen_u(r) < 0.7
                     ? gen_pick(gen_first(g, &g->online, NULL), r)
                     : gen_pick(gen_first(g, &g->by_country[c->home], NULL),
                                r);
            if (mi != ep->merch[0]) break;
        }
        amount = exp(log(120.0) + 0.8 * rs_rng_normal(r));
        break;
    default: /* velocity: normal-looking purchases, each at a new shop */
        mi = gen_pick(gen_first(g, &g->by_country[c->home], NULL), r);
        amount = c->median * gen_mccs[g->merch[mi].mcc].mult *
                 exp(c->sigma * rs_rng_normal(r));
        if (amount < 0.5) amount = 0.5;
        break;
    }
    gen_fill_tx(g, rec, ep->card, mi, t, amount, tz_card);
    gen_truth(g, rec, ep->card, 1, ep->pattern, ep->id);
    gen_bloom_add(c, mi);

    if (--ep->remaining > 0) {
        int64_t nt = t + (int64_t)rs_rng_exp(r, 1.0 / gen_ep_gap(ep)) + 1;
        gen_push(g, nt, GEN_IT_EPISODE, ep->pattern, 0, 0, e, ep->id);
    } else {
        gen_ep_release(g, e);
    }
    return 1;
}

int gen_cards_step(rs_gen_t *g, const gen_item_t *it, rs_gen_rec_t *rec) {
    switch (GEN_IT_KIND(it)) {
    case GEN_IT_CARD:
        return gen_genuine(g, it, rec);
    case GEN_IT_EPISODE:
        return gen_fraud_step(g, it, rec);
    case GEN_IT_PATSTART: {
        int p = (int)it->idx;
        int planned = gen_start_episode(g, p, it->t);
        gen_schedule_pattern(g, p, it->t,
                             planned > 0 ? planned : gen_prior_events[p]);
        return 0;
    }
    default:
        return 0;
    }
}
