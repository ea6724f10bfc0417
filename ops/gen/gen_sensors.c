/* gen_sensors.c -- the sensors world: machines at sites, read at an
 * interval; each machine cycles healthy -> drifting -> failure -> repair.
 *
 * A reading is base + daily cycle + noise + load + drift, where the load is
 * a slow AR(1) shared by the machine's sensors (so healthy machines also
 * wander), and the drift of the 2-3 sensors of the failure mode grows as
 * progress^1.5 from the drift start to `shift` at the failure.  The failure
 * time is fixed when the cycle starts, so a reading knows at once whether
 * it falls in the pre-failure window (positive) or not.
 */
#include "gen_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct gen_sensor_s {
    const char *name;
    double base_lo, base_hi;   /* healthy mean drawn per machine          */
    double sd;                 /* white noise                             */
    double amp;                /* daily cycle amplitude                   */
    double load;               /* load coupling, in sd units              */
} gen_sensor_t;

static const gen_sensor_t gen_sensor_tab[GEN_MAX_SENSORS] = {
    {"temperature", 55.0, 75.0, 0.6, 2.5, 1.0},
    {"vibration", 1.5, 3.0, 0.12, 0.05, 0.5},
    {"pressure", 4.0, 6.0, 0.06, 0.04, 0.3},
    {"rpm", 1200.0, 1800.0, 6.0, 25.0, 1.0},
    {"current", 15.0, 30.0, 0.3, 0.8, 1.2},
    {"voltage", 395.0, 405.0, 1.2, 1.5, 0.0},
    {"flow", 80.0, 120.0, 1.2, 2.5, 0.8},
    {"humidity", 35.0, 55.0, 1.5, 6.0, 0.0},
};

const char *gen_sensor_name(int i) {
    return i >= 0 && i < GEN_MAX_SENSORS ? gen_sensor_tab[i].name : "unknown";
}

/* Drift at the failure, in units of the sensor's healthy spread
 * (gen_spread: noise, load and daily cycle together), per failure mode. */
static const double gen_mode_shift[3][GEN_MAX_SENSORS] = {
    /* temp  vib   press  rpm   curr  volt  flow  hum */
    {2.5, 4.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0},   /* bearing_wear  */
    {4.0, 0.0, 0.0, -2.0, 3.0, 0.0, 0.0, 0.0},   /* overheating   */
    {0.0, 0.0, -4.0, 2.0, 0.0, 0.0, -3.0, 0.0},  /* pressure_leak */
};

/* Healthy standard deviation of a sensor: white noise and load (sd each)
 * plus a sine of amplitude amp (variance amp^2 / 2). */
static double gen_spread(const gen_sensor_t *st) {
    return sqrt(st->sd * st->sd * (1.0 + st->load * st->load) +
                st->amp * st->amp / 2.0);
}

/* Operating settings of regime k (gen.conditions): like turbofan
 * run-to-failure data, altitude (kft), Mach number and throttle angle; the
 * first six are the six conditions of such data sets.  Emitted with noise
 * (setting_sd per setting) as setting1..3. */
static const double gen_setting_tab[8][3] = {
    {0.0, 0.00, 100.0}, {10.0, 0.25, 100.0}, {20.0, 0.70, 100.0},
    {25.0, 0.62, 60.0}, {35.0, 0.84, 100.0}, {42.0, 0.84, 100.0},
    {15.0, 0.40, 80.0}, {30.0, 0.50, 80.0},
};
static const double gen_setting_sd[3] = {0.003, 0.001, 0.0};

static const char *gen_machine_types[4] = {"pump", "compressor", "fan",
                                           "conveyor"};

static inline double gen_su(rs_rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * rs_rng_uniform(r);
}

/* Start a healthy period at t0: fix the next drift start, failure time and
 * failure mode (draws from rng_fraud: the failure process). */
static void gen_machine_cycle(rs_gen_t *g, gen_machine_t *mc, int64_t t0) {
    rs_rng_t *r = &g->rng_fraud;
    const rs_gen_conf_t *cf = &g->conf;
    mc->drift_start_ms =
        t0 + (int64_t)rs_rng_exp(r, 1.0 / (double)cf->mtbf_ms);
    mc->fail_ms = mc->drift_start_ms +
                  (int64_t)gen_su(r, (double)cf->drift_min_ms,
                                  (double)cf->drift_max_ms);
    int mode = (int)rs_rng_below(r, 3);
    mc->mode = (uint8_t)(RS_GEN_PAT_BEARING_WEAR + mode);
    double scale = gen_su(r, 0.7, 1.3);
    for (int s = 0; s < GEN_MAX_SENSORS; s++)
        mc->shift[s] =
            gen_mode_shift[mode][s] * scale * gen_spread(&gen_sensor_tab[s]);
    mc->episode = ++g->episode_seq;
    mc->shape = 0;
    if (cf->degradation) { /* extra draws only off the default */
        mc->shape = cf->degradation == 3 ? (uint8_t)rs_rng_below(r, 3)
                                         : (uint8_t)cf->degradation;
        mc->step_ms = mc->drift_start_ms +
                      (int64_t)(gen_su(r, 0.2, 0.8) *
                                (double)(mc->fail_ms - mc->drift_start_ms));
    }
}

rs_err_t gen_sensors_init(rs_gen_t *g, char *errstr, size_t errstr_size) {
    RS_UNUSED(errstr);
    RS_UNUSED(errstr_size);
    rs_rng_t *r = &g->rng_world;
    const rs_gen_conf_t *cf = &g->conf;
    g->n_sensors = (int)cf->sensors;
    g->n_mach = (uint32_t)cf->entities;
    g->mach = rs_calloc(g->n_mach, sizeof(*g->mach));
    uint32_t n_sites = (uint32_t)cf->counterparties;
    for (uint32_t i = 0; i < g->n_mach; i++) {
        gen_machine_t *mc = &g->mach[i];
        mc->site = (uint32_t)rs_rng_below(r, n_sites);
        mc->type = (uint8_t)rs_rng_below(r, 4);
        /* Sites share a climate: the phase of the daily cycle. */
        mc->phase_h = (uint8_t)((mc->site * 7u) % 24u);
        for (int s = 0; s < GEN_MAX_SENSORS; s++)
            mc->base[s] = gen_su(r, gen_sensor_tab[s].base_lo,
                                 gen_sensor_tab[s].base_hi);
        mc->load = rs_rng_normal(r);
        gen_machine_cycle(g, mc, g->start_ms + cf->warmup_ms);
        int64_t t0 = g->start_ms + (int64_t)rs_rng_below(
                                       r, (uint64_t)cf->reading_interval_ms);
        gen_push(g, t0, GEN_IT_MACHINE, 0, 0, 0, i, 0);
    }
    size_t n = (size_t)snprintf(g->csv_header, sizeof(g->csv_header),
                                "id,type,entity_id,counterparty_id,"
                                "event_time_ms,amount");
    for (int s = 0; s < g->n_sensors; s++)
        n += (size_t)snprintf(g->csv_header + n, sizeof(g->csv_header) - n,
                              ",%s", gen_sensor_tab[s].name);
    if (cf->conditions > 0) {
        g->n_settings = 3;
        n += (size_t)snprintf(g->csv_header + n, sizeof(g->csv_header) - n,
                              ",setting1,setting2,setting3");
    }
    snprintf(g->csv_header + n, sizeof(g->csv_header) - n,
             ",machine_type,label");
    return RS_OK;
}

void gen_sensors_free(rs_gen_t *g) {
    free(g->mach);
    g->mach = NULL;
}

int gen_sensors_step(rs_gen_t *g, const gen_item_t *it, rs_gen_rec_t *rec) {
    if (GEN_IT_KIND(it) != GEN_IT_MACHINE) return 0;
    rs_rng_t *r = &g->rng_card;
    const rs_gen_conf_t *cf = &g->conf;
    uint32_t mi = it->idx;
    gen_machine_t *mc = &g->mach[mi];
    int64_t t = it->t;

    if (t >= mc->fail_ms) {
        /* The machine failed since its last reading: down for the repair,
         * then back as new (drift cleared, load reset). */
        g->st.failures++;
        g->st.episodes[mc->mode]++;
        int64_t back = RS_MAX(mc->fail_ms + cf->repair_ms, t);
        gen_machine_cycle(g, mc, back);
        mc->load = 0;
        gen_push(g, back, GEN_IT_MACHINE, 0, 0, 0, mi, 0);
        return 0;
    }

    rs_event_t *ev = &rec->ev;
    gen_put_id(ev->id, "r-", 2, g->ev_no);
    memcpy(ev->type, "sensor", 7);
    gen_put_id(ev->entity_id, "machine-", 8, mi);
    gen_put_id(ev->counterparty_id, "site-", 5, mc->site);
    ev->event_time_ms = t;
    ev->amount = 0;

    mc->load = 0.95 * mc->load + 0.3122 * rs_rng_normal(r);
    double day = (double)((t / GEN_MIN_MS + mc->phase_h * 60) % 1440) / 1440.0;
    double cyc = sin(2.0 * M_PI * day);
    double prog = 0, lin = 0;
    if (t > mc->drift_start_ms && mc->fail_ms > mc->drift_start_ms) {
        lin = (double)(t - mc->drift_start_ms) /
              (double)(mc->fail_ms - mc->drift_start_ms);
        prog = pow(lin, 1.5);
    }
    double noise_x = 1.0;
    if (mc->shape == 1) {          /* step */
        prog = t >= mc->step_ms ? 1.0 : 0.0;
    } else if (mc->shape == 2) {   /* noisy */
        noise_x = 1.0 + 4.0 * lin;
        prog *= 0.5;
    }
    if (cf->conditions > 0 &&
        rs_rng_uniform(r) < (double)cf->reading_interval_ms / 86400000.0)
        mc->regime = (uint8_t)rs_rng_below(r, (uint64_t)cf->conditions);
    double reg = cf->conditions > 1
                     ? 3.0 * ((double)mc->regime / (double)(cf->conditions - 1) - 0.5)
                     : 0.0;
    ev->n_numeric = g->n_sensors;
    for (int s = 0; s < g->n_sensors; s++) {
        const gen_sensor_t *st = &gen_sensor_tab[s];
        double nx = mc->shift[s] != 0 ? noise_x : 1.0;
        double v = mc->base[s] + st->amp * cyc +
                   st->sd * (nx * rs_rng_normal(r) + st->load * mc->load) +
                   prog * mc->shift[s] + reg * gen_spread(st) * (s % 2 ? -1 : 1);
        rs_strlcpy(ev->numeric[s].name, st->name, RS_NAME_MAX);
        ev->numeric[s].value = round(v * 1000.0) / 1000.0;
    }
    for (int k = 0; k < g->n_settings; k++) {
        /* the regime as its operating settings, from their own stream:
         * the readings are the same with or without them */
        double v = gen_setting_tab[mc->regime][k] +
                   gen_setting_sd[k] * rs_rng_normal(&g->rng_set);
        char *nm = ev->numeric[ev->n_numeric].name;
        memcpy(nm, "setting", 7);
        nm[7] = (char)('1' + k);
        nm[8] = '\0';
        ev->numeric[ev->n_numeric++].value = round(v * 1000.0) / 1000.0;
    }
    ev->n_categ = 1;
    memcpy(ev->categ[0].name, "machine_type", 13);
    rs_strlcpy(ev->categ[0].value, gen_machine_types[mc->type],
               RS_CATVAL_MAX);

    int pos = t > mc->fail_ms - cf->failure_window_ms;
    rec->is_fraud = pos;
    rec->pattern = pos ? mc->mode : 0;
    rec->episode = pos ? mc->episode : 0;
    if (pos)
        gen_label(g, mc->fail_ms, cf->failure_label_delay_ms, mi, 1, mc->mode,
                  mc->episode);
    else if (cf->negative_labels)
        gen_label(g, t + cf->failure_window_ms, cf->failure_label_delay_ms, mi,
                  0, 0, 0);

    /* Next reading: the interval +-2 % (clocks are not perfect). */
    int64_t iv = cf->reading_interval_ms;
    int64_t nt = t + iv + (int64_t)((rs_rng_uniform(r) - 0.5) * 0.04 *
                                    (double)iv);
    if (nt <= t) nt = t + 1;
    gen_push(g, nt, GEN_IT_MACHINE, 0, 0, 0, mi, 0);
    return 1;
}
