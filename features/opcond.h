/* opcond.h -- operating conditions: readings normalised per condition.
 *
 * Design note
 * -----------
 * A machine's sensors move with how it is run (load, speed, altitude):
 * run-to-failure files carry that as operating SETTING columns
 * (`setting1..3`), and practice normalises each sensor per operating
 * condition before baselines and trends are computed.  rs_opcond does
 * that online, for the whole fleet seen by one handle:
 *
 *  - condition assignment: the settings of a reading, each scaled by its
 *    standard deviation over the first `warmup` readings (1 if constant),
 *    go to the nearest condition centre (Euclidean).  The first `warmup`
 *    readings are buffered; then centres are chosen farthest-first (the
 *    first reading, then each time the reading farthest from every
 *    centre) and kept up to the last one whose distance is more than
 *    RS_OPCOND_SEPARATION times the next one's: well-separated settings
 *    drop at once from the distance between conditions to their noise,
 *    noise alone never does.  After the warm-up a reading more than
 *    RS_OPCOND_SEPARATION times the readings' RMS distance to their
 *    centre away from every known condition starts a new one (up to
 *    `max_conditions`; a cap below the true count merges conditions);
 *    a centre is the running mean of its readings.  Deterministic: the
 *    same readings in the same order give the same conditions.
 *  - per-condition effects: Welford (n, mean, M2) per field per
 *    condition of the reading minus its MACHINE's level (the caller's
 *    baseline mean of the machine's normalised readings before this one,
 *    from the machine's second reading on: rs_opcond_learn; noisy at
 *    first, unbiased, and diluted as readings come, where waiting leaves
 *    the machine's first readings raw in its baseline).  The effect of a condition is thus measured
 *    within machines: a fleet mean per condition would also carry which
 *    machines happened to run in it (machine-to-machine offsets are
 *    several times a condition's effect on the generator's), and the
 *    machine's level in turn comes from readings already normalised, so
 *    the two settle together.
 *  - normalisation: a field's value x in condition c becomes
 *        x - e_c + E
 *    e_c the mean of condition c's differences, E the readings-weighted
 *    mean of e over the warm conditions: the reading moved to the fleet's
 *    average condition, in the sensor's own units (with one condition it
 *    is x itself).  Not scaled by a per-condition spread: measured, that
 *    cost more than it gave (docs/maintenance.md).  A condition with fewer
 *    than `min_readings` differences of the field, a reading without
 *    finite settings and the warm-up readings are left raw.
 *
 * Memory: fixed at create (about 16 KB); no
 * allocation per reading.  Threads: an rs_opcond_t is owned by one thread
 * (the owner of the rs_features_t that holds it); distinct handles are
 * independent.
 */
#ifndef RS_OPCOND_H
#define RS_OPCOND_H

#include "common/common.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_OPCOND_MAX_SETTINGS   4    /* setting fields                     */
#define RS_OPCOND_MAX_FIELDS    16    /* normalised fields                  */
#define RS_OPCOND_MAX_CONDITIONS 16
#define RS_OPCOND_MAX_WARMUP   256
#define RS_OPCOND_MIN_READINGS 32    /* a condition normalises a field once
                                       * it has this many readings of it (a
                                       * standard deviation of 32 readings
                                       * is known to about 13 %)           */
#define RS_OPCOND_SEPARATION   8.0    /* separated: a gap of this factor   */

typedef struct rs_opcond_s rs_opcond_t;

typedef struct rs_opcond_conf_s {
    int nset;                                   /* 1..MAX_SETTINGS    */
    char set[RS_OPCOND_MAX_SETTINGS][RS_NAME_MAX];
    int nfield;                                 /* 0..MAX_FIELDS      */
    char field[RS_OPCOND_MAX_FIELDS][RS_NAME_MAX];
    int max_conditions;                         /* 1..MAX_CONDITIONS  */
    int warmup;                                 /* 2..MAX_WARMUP      */
    int min_readings;                           /* >= 2               */
} rs_opcond_conf_t;

/* The handle (RS_ERR_CONFIG in errstr for a bad conf: NULL).  Caller owns
 * it; rs_opcond_destroy frees it (NULL is fine). */
rs_opcond_t *rs_opcond_create(const rs_opcond_conf_t *conf, char *errstr,
                              size_t errstr_size);
void rs_opcond_destroy(rs_opcond_t *o);

/* One reading: settings[nset] and values[nfield] (NAN: missing) in conf
 * order; out[nfield] gets the normalised values (out may be values).
 * Returns the reading's condition (0..), or -1 (warm-up, or a setting is
 * not finite: left raw, nothing learned). */
int rs_opcond_observe(rs_opcond_t *o, const double *settings,
                      const double *values, double *out);

/* Teach the condition of the reading last observed (not -1) its effect
 * on field j: `level` is the reading's machine's level of that field (its
 * baseline mean of normalised readings before this one).  rs_opcond_learn_field: the field by name (ignored if not a
 * normalised field). */
void rs_opcond_learn(rs_opcond_t *o, int j, double level);
void rs_opcond_learn_field(rs_opcond_t *o, const char *name, double level);

/* The same from an event (fields by name): the normalised values are kept
 * until the next call and read with rs_opcond_value. */
int rs_opcond_observe_event(rs_opcond_t *o, const rs_event_t *ev);
/* The value of field `name` for the event last observed: the normalised
 * one if `name` is a normalised field, else `raw`. */
double rs_opcond_value(const rs_opcond_t *o, const char *name, double raw);

/* Conditions found so far (0 during the warm-up). */
int rs_opcond_count(const rs_opcond_t *o);
/* Readings of condition c (0 if out of range); its centre in the
 * settings' units into centre[nset] (may be NULL). */
double rs_opcond_readings(const rs_opcond_t *o, int c, double *centre);

/* Forget everything learned (fresh state). */
void rs_opcond_reset(rs_opcond_t *o);

/* State for checkpoints: rs_opcond_state_size bytes (fixed per conf),
 * native byte order.  rs_opcond_load validates (NULL on success, else a
 * static reason; the state is then reset). */
size_t rs_opcond_state_size(const rs_opcond_t *o);
void rs_opcond_save(const rs_opcond_t *o, void *buf);
const char *rs_opcond_load(rs_opcond_t *o, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* RS_OPCOND_H */
