/* gen.c -- generator core: configuration table, the item heap, the pull
 * loop, labels and stats.  The two worlds live in gen_cards.c and
 * gen_sensors.c, file output in gen_file.c.  See gen.h and gen_int.h. */
#include "gen_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ conf table */

#define GEN_OFF(f) offsetof(rs_gen_conf_t, f)
#define GEN_D(days) ((double)(days) * 86400000.0)

const rs_conf_field_t rs_gen_conf_fields[] = {
    {"seed", RS_CONF_INT, "42", GEN_OFF(seed), 0,
     "PRNG seed: same configuration and seed -> same stream", NULL, 0, 0},
    {"mode", RS_CONF_ENUM, "cards", GEN_OFF(mode), 0,
     "world to simulate: card transactions or machine sensors",
     "cards|sensors", 0, 0},
    {"entities", RS_CONF_INT, "0", GEN_OFF(entities), 0,
     "cards or machines; 0 = mode default (10000 cards / 200 machines)",
     NULL, 0, 1e8},
    {"counterparties", RS_CONF_INT, "0", GEN_OFF(counterparties), 0,
     "merchants or sites; 0 = mode default (2000 merchants / 20 sites)",
     NULL, 0, 1e7},
    {"start_time", RS_CONF_STRING, "2026-01-01T00:00:00Z",
     GEN_OFF(start_time), sizeof(((rs_gen_conf_t *)0)->start_time),
     "event time of the stream start (ISO UTC, epoch s or epoch ms)", NULL,
     0, 0},
    {"duration", RS_CONF_DURATION, "30d", GEN_OFF(duration_ms), 0,
     "event-time span of the stream; 0 = unlimited", NULL, 0, GEN_D(36500)},
    {"max_events", RS_CONF_INT, "0", GEN_OFF(max_events), 0,
     "stop after this many events; 0 = unlimited", NULL, 0, 1e15},
    {"drain_labels", RS_CONF_BOOL, "true", GEN_OFF(drain_labels), 0,
     "after the last event, still emit the labels in flight", NULL, 0, 0},
    {"label_delay", RS_CONF_DURATION, "3d", GEN_OFF(label_delay_ms), 0,
     "cards: delay from a fraud event to its label", NULL, 0, GEN_D(3650)},
    {"label_jitter", RS_CONF_DOUBLE, "0.5", GEN_OFF(label_jitter), 0,
     "relative jitter of label delays: delay * (1 + jitter * U(-1,1))", NULL,
     0, 1},
    {"negative_labels", RS_CONF_BOOL, "false", GEN_OFF(negative_labels), 0,
     "also emit value-0 labels for genuine events / healthy readings", NULL,
     0, 0},
    {"warmup", RS_CONF_DURATION, "1d", GEN_OFF(warmup_ms), 0,
     "no fraud episode or drift starts in this first part of the stream",
     NULL, 0, GEN_D(3650)},
    {"tx_per_day", RS_CONF_DOUBLE, "2", GEN_OFF(tx_per_day), 0,
     "cards: median transactions per card per day", NULL, 0.01, 1000},
    {"amount_median", RS_CONF_DOUBLE, "30", GEN_OFF(amount_median), 0,
     "cards: median over cards of a card's median amount", NULL, 0.5, 1e6},
    {"trips_per_year", RS_CONF_DOUBLE, "2", GEN_OFF(trips_per_year), 0,
     "cards: genuine trips abroad per card per year", NULL, 0, 365},
    {"card_testing_rate", RS_CONF_DOUBLE, "0.003", GEN_OFF(card_testing_rate),
     0, "cards: share of events from card-testing bursts", NULL, 0, 0.2},
    {"takeover_rate", RS_CONF_DOUBLE, "0.003", GEN_OFF(takeover_rate), 0,
     "cards: share of events from account takeovers", NULL, 0, 0.2},
    {"compromised_rate", RS_CONF_DOUBLE, "0.003", GEN_OFF(compromised_rate),
     0, "cards: share of events from compromised-merchant victims", NULL, 0,
     0.2},
    {"velocity_rate", RS_CONF_DOUBLE, "0.002", GEN_OFF(velocity_rate), 0,
     "cards: share of events from velocity spikes", NULL, 0, 0.2},
    {"fraud_rate", RS_CONF_DOUBLE, "0", GEN_OFF(fraud_rate), 0,
     "cards: if > 0, the four pattern rates are scaled to sum to this share "
     "of events (0: the rates as given)", NULL, 0, 0.5},
    {"compromise_duration", RS_CONF_DURATION, "0", GEN_OFF(compromise_ms), 0,
     "cards: if > 0, a breached merchant stays breached this long and each "
     "visiting card is stolen with probability 0.5 (0: one-shot breach of "
     "the past week's visitors)", NULL, 0, GEN_D(365)},
    {"sensors", RS_CONF_INT, "4", GEN_OFF(sensors), 0,
     "sensors: sensors per machine (temperature, vibration, pressure, rpm, "
     "current, voltage, flow, humidity)", NULL, 1, 8},
    {"reading_interval", RS_CONF_DURATION, "5m", GEN_OFF(reading_interval_ms),
     0, "sensors: time between two readings of a machine", NULL, 1000,
     GEN_D(1)},
    {"mtbf", RS_CONF_DURATION, "20d", GEN_OFF(mtbf_ms), 0,
     "sensors: mean healthy time before a machine starts drifting", NULL,
     3600000, GEN_D(36500)},
    {"drift_min", RS_CONF_DURATION, "1d", GEN_OFF(drift_min_ms), 0,
     "sensors: shortest drift phase before a failure", NULL, 0, GEN_D(365)},
    {"drift_max", RS_CONF_DURATION, "3d", GEN_OFF(drift_max_ms), 0,
     "sensors: longest drift phase before a failure", NULL, 0, GEN_D(365)},
    {"failure_window", RS_CONF_DURATION, "24h", GEN_OFF(failure_window_ms), 0,
     "sensors: readings this long before a failure are positives", NULL, 1000,
     GEN_D(365)},
    {"repair", RS_CONF_DURATION, "4h", GEN_OFF(repair_ms), 0,
     "sensors: downtime after a failure (no readings)", NULL, 0, GEN_D(365)},
    {"failure_label_delay", RS_CONF_DURATION, "1h",
     GEN_OFF(failure_label_delay_ms), 0,
     "sensors: delay from a failure to the labels of its readings", NULL, 0,
     GEN_D(3650)},
    {"degradation", RS_CONF_ENUM, "drift", GEN_OFF(degradation), 0,
     "sensors: how a failure shows before it: drift (the failure mode's "
     "sensors drift as progress^1.5), step (a sudden step somewhere in the "
     "drift phase), noisy (half the drift, and the noise of those sensors "
     "grows to 5x), mixed (each failure one of the three)",
     "drift|step|noisy|mixed", 0, 0},
    {"conditions", RS_CONF_INT, "0", GEN_OFF(conditions), 0,
     "sensors: operating regimes (0: one); with K > 0 every machine "
     "switches about daily between K regimes that move all its sensors by "
     "up to +-1.5 healthy spreads (as operating settings do); the regime is "
     "observable as fields setting1..3 (its operating settings, with "
     "noise, as run-to-failure files have them)", NULL, 0, 8},
};
const int rs_gen_conf_nfields = (int)RS_ARRAY_LEN(rs_gen_conf_fields);

void rs_gen_conf_defaults(rs_gen_conf_t *conf) {
    char errstr[256];
    rs_conf_section_t sec = {"gen", "synthetic stream generator",
                             rs_gen_conf_fields, rs_gen_conf_nfields, conf};
    rs_conf_t *c = rs_conf_new();
    memset(conf, 0, sizeof(*conf));
    if (rs_conf_add_section(c, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("gen", "bad default in the gen table: %s", errstr);
    rs_conf_destroy(c);
}

rs_err_t rs_gen_conf_set(rs_gen_conf_t *conf, const char *key,
                         const char *value, char *errstr, size_t errstr_size) {
    /* Run the value through rs_conf_set on a scratch copy so the parsing and
     * bounds are exactly those of the YAML path; commit only on success. */
    rs_gen_conf_t tmp;
    char full[128];
    rs_conf_section_t sec = {"gen", "synthetic stream generator",
                             rs_gen_conf_fields, rs_gen_conf_nfields, &tmp};
    if (!key || !value)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "gen: NULL key");
    if (strlen(key) + 5 > sizeof(full))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "gen: key too long");
    snprintf(full, sizeof(full), "gen.%s", key);
    rs_conf_t *c = rs_conf_new();
    rs_err_t err = rs_conf_add_section(c, &sec, errstr, errstr_size);
    if (err == RS_OK) {
        tmp = *conf;
        err = rs_conf_set(c, full, value, errstr, errstr_size);
        if (err == RS_OK) *conf = tmp;
    }
    rs_conf_destroy(c);
    return err;
}

/* ----------------------------------------------------------------- names */

const char *rs_gen_pattern_name(int pattern) {
    static const char *names[RS_GEN_PAT__CNT] = {
        "none", "card_testing", "account_takeover",
        "compromised_counterparty", "velocity_spike", "bearing_wear",
        "overheating", "pressure_leak"};
    if (pattern < 0 || pattern >= RS_GEN_PAT__CNT) return "unknown";
    return names[pattern];
}

size_t gen_put_u64(char *dst, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
    dst[n] = '\0';
    return n;
}

/* ------------------------------------------------------------------ heap */

static inline int gen_less(const gen_item_t *a, const gen_item_t *b) {
    return a->t < b->t || (a->t == b->t && a->key < b->key);
}

void gen_push(rs_gen_t *g, int64_t t, int kind, int pattern, int value,
              uint64_t no, uint32_t idx, uint32_t episode) {
    if (g->heap_n == g->heap_cap) {
        /* Geometric growth: amortised, not per record. */
        g->heap_cap = g->heap_cap ? g->heap_cap * 2 : 1024;
        g->heap = rs_realloc(g->heap, g->heap_cap * sizeof(*g->heap));
    }
    gen_item_t it;
    it.t = t;
    it.key = (g->seq++ << 24) | ((uint64_t)kind << 16) |
             ((uint64_t)pattern << 8) | (uint64_t)value;
    it.no = no;
    it.idx = idx;
    it.episode = episode;
    gen_item_t *h = g->heap;
    size_t i = g->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!gen_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static void gen_pop(rs_gen_t *g, gen_item_t *out) {
    gen_item_t *h = g->heap;
    *out = h[0];
    size_t n = --g->heap_n;
    if (!n) return;
    gen_item_t last = h[n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && gen_less(&h[c + 1], &h[c])) c++;
        if (!gen_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
}

/* ---------------------------------------------------------------- labels */

void gen_label(rs_gen_t *g, int64_t base_ms, int64_t delay_ms, uint32_t ent,
               int value, int pattern, uint32_t episode) {
    double j = g->conf.label_jitter;
    int64_t d = delay_ms;
    if (j > 0 && delay_ms > 0) {
        double u = 2.0 * rs_rng_uniform(&g->rng_label) - 1.0;
        d = (int64_t)llround((double)delay_ms * (1.0 + j * u));
        if (d < 0) d = 0;
    }
    gen_push(g, base_ms + d, GEN_IT_LABEL, pattern, value, g->ev_no, ent,
             episode);
}

static void gen_emit_label(rs_gen_t *g, const gen_item_t *it,
                           rs_gen_rec_t *rec) {
    int cards = g->conf.mode == RS_GEN_MODE_CARDS;
    rs_label_t *lb = &rec->lb;
    int value = GEN_IT_VAL(it);
    if (cards) {
        gen_put_id(lb->event_id, "tx-", 3, it->no);
        gen_put_id(lb->entity_id, "card-", 5, it->idx);
    } else {
        gen_put_id(lb->event_id, "r-", 2, it->no);
        gen_put_id(lb->entity_id, "machine-", 8, it->idx);
    }
    lb->value = value;
    lb->label_time_ms = it->t;
    rec->kind = RS_GEN_LABEL;
    rec->emit_time_ms = it->t;
    rec->is_fraud = value;
    rec->pattern = GEN_IT_PAT(it);
    rec->episode = it->episode;
    g->st.labels++;
    if (value) g->st.labels_pos++;
}

/* ------------------------------------------------------------- lifecycle */

static rs_err_t gen_resolve(rs_gen_conf_t *c, int64_t *start_ms, char *errstr,
                            size_t errstr_size) {
#define GEN_BAD(...) return rs_errf(errstr, errstr_size, RS_ERR_CONFIG, __VA_ARGS__)
    if (c->mode != RS_GEN_MODE_CARDS && c->mode != RS_GEN_MODE_SENSORS)
        GEN_BAD("gen.mode: invalid value %d", c->mode);
    int cards = c->mode == RS_GEN_MODE_CARDS;
    if (c->entities == 0) c->entities = cards ? 10000 : 200;
    if (c->counterparties == 0) c->counterparties = cards ? 2000 : 20;
    if (c->entities < 1 || c->entities > 100000000)
        GEN_BAD("gen.entities: %lld out of range [1, 1e8]",
                (long long)c->entities);
    if (c->counterparties < 1 || c->counterparties > 10000000)
        GEN_BAD("gen.counterparties: %lld out of range [1, 1e7]",
                (long long)c->counterparties);
    if (c->start_time[0] == '\0' ||
        rs_time_parse(c->start_time, strlen(c->start_time), start_ms) != 0)
        GEN_BAD("gen.start_time: cannot parse '%s'", c->start_time);
    if (*start_ms < RS_TIME_MIN_MS || *start_ms >= RS_TIME_MAX_MS)
        GEN_BAD("gen.start_time: '%s' outside [2000, 2100)", c->start_time);
    if (c->duration_ms < 0) GEN_BAD("gen.duration: negative");
    if (c->max_events < 0) GEN_BAD("gen.max_events: negative");
    if (c->warmup_ms < 0) GEN_BAD("gen.warmup: negative");
    if (c->label_delay_ms < 0 || c->failure_label_delay_ms < 0)
        GEN_BAD("gen.label_delay: negative");
    if (!(c->label_jitter >= 0 && c->label_jitter <= 1))
        GEN_BAD("gen.label_jitter: %g out of range [0, 1]", c->label_jitter);
    if (cards) {
        double rates[4] = {c->card_testing_rate, c->takeover_rate,
                           c->compromised_rate, c->velocity_rate};
        double sum = 0;
        for (int i = 0; i < 4; i++) {
            if (!(rates[i] >= 0 && rates[i] <= 0.2))
                GEN_BAD("gen: fraud rate %g out of range [0, 0.2]", rates[i]);
            sum += rates[i];
        }
        if (sum > 0.5) GEN_BAD("gen: fraud rates sum to %g (> 0.5)", sum);
        if (!(c->fraud_rate >= 0 && c->fraud_rate <= 0.5))
            GEN_BAD("gen.fraud_rate: %g out of range [0, 0.5]", c->fraud_rate);
        if (c->fraud_rate > 0 && !(sum > 0))
            GEN_BAD("gen.fraud_rate: %g needs a pattern rate > 0", c->fraud_rate);
        if (c->compromise_ms < 0)
            GEN_BAD("gen.compromise_duration: negative");
        if (!(c->tx_per_day >= 0.01 && c->tx_per_day <= 1000))
            GEN_BAD("gen.tx_per_day: %g out of range [0.01, 1000]",
                    c->tx_per_day);
        if (!(c->amount_median >= 0.5 && c->amount_median <= 1e6))
            GEN_BAD("gen.amount_median: %g out of range [0.5, 1e6]",
                    c->amount_median);
        if (!(c->trips_per_year >= 0 && c->trips_per_year <= 365))
            GEN_BAD("gen.trips_per_year: %g out of range [0, 365]",
                    c->trips_per_year);
    } else {
        if (c->sensors < 1 || c->sensors > GEN_MAX_SENSORS)
            GEN_BAD("gen.sensors: %lld out of range [1, 8]",
                    (long long)c->sensors);
        if (c->reading_interval_ms < 1000)
            GEN_BAD("gen.reading_interval: below 1s");
        if (c->mtbf_ms < GEN_HOUR_MS) GEN_BAD("gen.mtbf: below 1h");
        if (c->drift_min_ms < 0 || c->drift_max_ms < c->drift_min_ms)
            GEN_BAD("gen.drift_min/drift_max: need 0 <= drift_min <= "
                    "drift_max");
        if (c->failure_window_ms < 1000)
            GEN_BAD("gen.failure_window: below 1s");
        if (c->repair_ms < 0) GEN_BAD("gen.repair: negative");
    }
    return RS_OK;
#undef GEN_BAD
}

rs_gen_t *rs_gen_new(const rs_gen_conf_t *conf, char *errstr,
                     size_t errstr_size) {
    rs_gen_t *g = NULL;
    if (!conf) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "gen: NULL conf");
        return NULL;
    }
    g = rs_calloc(1, sizeof(*g));
    g->conf = *conf;
    g->conf.start_time[sizeof(g->conf.start_time) - 1] = '\0';
    if (gen_resolve(&g->conf, &g->start_ms, errstr, errstr_size) != RS_OK)
        goto fail;
    g->end_ms = g->conf.duration_ms > 0 ? g->start_ms + g->conf.duration_ms
                                         : INT64_MAX;
    if (g->conf.fraud_rate > 0) { /* scale the pattern mix to the total */
        double sum = g->conf.card_testing_rate + g->conf.takeover_rate +
                     g->conf.compromised_rate + g->conf.velocity_rate;
        double k = g->conf.fraud_rate / sum;
        g->conf.card_testing_rate *= k;
        g->conf.takeover_rate *= k;
        g->conf.compromised_rate *= k;
        g->conf.velocity_rate *= k;
    }
    /* Independent streams from one seed (splitmix64 inside rs_rng_seed). */
    uint64_t s = (uint64_t)g->conf.seed;
    rs_rng_seed(&g->rng_world, s ^ 0x776f726c64000001ULL);
    rs_rng_seed(&g->rng_card, s ^ 0x6361726473000002ULL);
    rs_rng_seed(&g->rng_fraud, s ^ 0x6672617564000003ULL);
    rs_rng_seed(&g->rng_label, s ^ 0x6c6162656c000004ULL);
    rs_rng_seed(&g->rng_set, s ^ 0x73657474696e0005ULL);
    g->ev_no = 1;
    g->eps_free = UINT32_MAX;

    rs_err_t err = g->conf.mode == RS_GEN_MODE_CARDS
                       ? gen_cards_init(g, errstr, errstr_size)
                       : gen_sensors_init(g, errstr, errstr_size);
    if (err != RS_OK) goto fail;
    return g;
fail:
    rs_gen_destroy(g);
    return NULL;
}

void rs_gen_destroy(rs_gen_t *g) {
    if (!g) return;
    gen_cards_free(g);
    gen_sensors_free(g);
    free(g->heap);
    free(g);
}

const rs_gen_conf_t *rs_gen_conf(const rs_gen_t *g) { return &g->conf; }

void rs_gen_stats(const rs_gen_t *g, rs_gen_stats_t *st) { *st = g->st; }

/* ------------------------------------------------------------------ pull */

int rs_gen_next(rs_gen_t *g, rs_gen_rec_t *rec) {
    if (g->finished) return 0;
    while (g->heap_n) {
        gen_item_t it;
        gen_pop(g, &it);
        int kind = GEN_IT_KIND(&it);
        if (kind == GEN_IT_LABEL) {
            gen_emit_label(g, &it, rec);
            return 1;
        }
        if (g->events_done) continue;  /* draining labels */
        if (it.t >= g->end_ms) {
            /* Heap order: every later event item is past the end too. */
            g->events_done = 1;
            if (!g->conf.drain_labels) break;
            continue;
        }
        int got = g->conf.mode == RS_GEN_MODE_CARDS
                      ? gen_cards_step(g, &it, rec)
                      : gen_sensors_step(g, &it, rec);
        if (!got) continue;
        rec->kind = RS_GEN_EVENT;
        rec->emit_time_ms = rec->ev.event_time_ms;
        g->st.events++;
        if (rec->is_fraud) {
            g->st.frauds++;
            g->st.fraud_events[rec->pattern]++;
        }
        if (!g->st.first_event_ms) g->st.first_event_ms = it.t;
        g->st.last_event_ms = it.t;
        g->ev_no++;
        if (g->conf.max_events > 0 &&
            g->st.events >= (uint64_t)g->conf.max_events) {
            g->events_done = 1;
            /* Without draining, this is the last record. */
            if (!g->conf.drain_labels) g->heap_n = 0;
        }
        return 1;
    }
    g->finished = 1;
    return 0;
}
