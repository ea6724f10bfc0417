/* combine.h -- one model across instances: what each version has learned
 * (its KNOWLEDGE), the rule that combines the versions several instances
 * learned, and the codec of a version message on the model topic.
 *
 * Design note
 * -----------
 * Instances of one consumer group each learn from the labels of their own
 * partitions.  Every published version carries a knowledge vector: per
 * ORIGIN (an instance id, or the name of a version learned outside the
 * group, e.g. a --model file), the learning steps, labels and standardiser
 * observations of that origin it contains.  An instance's own learning adds
 * to its own origin; a combination contains the union (element-wise
 * maximum) of its inputs' knowledge.  Knowledge only grows per origin (an
 * instance's learning is a sequence: a later version contains a longer
 * prefix of it), which is what makes the rule below free of double
 * counting.
 *
 * The rule (rs_combine_plan): given the latest version of every instance
 * (self included), an input whose knowledge another input contains is left
 * out (weight 0: e.g. the last version of an instance that left the group),
 * and of inputs with the same knowledge only the smallest name stays; over
 * the inputs that stay, the COMMON knowledge is the element-wise minimum;
 * each one's weight is what it learned beyond the common part (its
 * EXCLUSIVE updates).  No learning step is ever counted twice: what every
 * input contains weighs nothing.  Then
 *   - two or more inputs with weight > 0: AVERAGE them (parameters, weight
 *     average, optimiser moments, routing fractions: weighted means;
 *     standardiser: pooled mean and variance weighted by exclusive
 *     observations), the result knows the union;
 *   - exactly one: ADOPT it (it knows everything the others know) -- or
 *     nothing if it is self's own version;
 *   - none (every input knows the same): ADOPT the smallest version name,
 *     so instances that combined the same knowledge differently agree.
 * The rule is deterministic: inputs are taken in instance-id order, sums
 * run in that order in double precision, so two instances that combine
 * the same versions get the same bytes and the same name,
 * "<kind>-<8 hex>-<n>.avg<k>-<8 hex>" (n = 1 + the largest input number,
 * k inputs, the hash of their names): once labels stop, every instance
 * ends on the same version (tests/model/test_combine.c,
 * tests/e2e/model_sync.sh).  Limits: docs/model.md "One model across
 * instances".
 *
 * The message (rs_combine_msg_*, I/O-free, fuzzed by fuzz_model_sync):
 *   "RSMV" | u8 format 1 | u8 flags (bit 0 combined, bit 1 adopted) |
 *   u16 0 | u8 len, instance id | u8 len, version | i64 produced (wall ms)
 *   | u16 n, n x (u8 len, origin | u64 updates, labels, observations) |
 *   u16 k, k x (u8 len, input version | f64 weight) | u64 model length,
 *   the model (rs_model_save bytes) | u64 rs_hash64 of all before it
 * little-endian.  The same encoding with an empty model is the "lineage"
 * file kept beside each stored version (scoring/modelsync.c).
 *
 * Threads: everything here is pure or works on models the caller owns.
 */
#ifndef RS_COMBINE_H
#define RS_COMBINE_H

#include "common/common.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_COMBINE_ORIGINS 64   /* origins in one knowledge vector         */
#define RS_COMBINE_INPUTS  64   /* versions combined at once (instances)   */
#define RS_COMBINE_ID_MAX  (RS_MODEL_TAG_MAX + 1) /* instance id incl. NUL */

/* 1 if id is a valid instance id: a version tag (model.h) that does not
 * start with "avg" (those name combinations).  Pure. */
int rs_combine_id_valid(const char *id);

/* ------------------------------------------------------------ knowledge */

typedef struct rs_know_origin_s {
    char origin[RS_VERSION_MAX]; /* instance id or version name            */
    uint64_t updates;            /* learning steps (incl. replays)          */
    uint64_t labels;             /* records learned (labels, maturity)      */
    uint64_t obs;                /* standardiser observations               */
} rs_know_origin_t;

typedef struct rs_know_s {
    int n;
    rs_know_origin_t o[RS_COMBINE_ORIGINS];
} rs_know_t;

void rs_know_clear(rs_know_t *k);
/* The entry of `origin`, or NULL. */
const rs_know_origin_t *rs_know_get(const rs_know_t *k, const char *origin);
/* Add to origin's counts (a new entry if absent).  RS_ERR_TOOBIG when the
 * vector is full, RS_ERR_INVALID for an empty or too long origin. */
rs_err_t rs_know_add(rs_know_t *k, const char *origin, uint64_t updates,
                     uint64_t labels, uint64_t obs);
/* dst = element-wise maximum of dst and a (the union of what both know).
 * RS_ERR_TOOBIG if the union has more than RS_COMBINE_ORIGINS origins
 * (dst unchanged). */
rs_err_t rs_know_union(rs_know_t *dst, const rs_know_t *a);
/* Sums over the origins. */
uint64_t rs_know_updates(const rs_know_t *k);
uint64_t rs_know_labels(const rs_know_t *k);
uint64_t rs_know_obs(const rs_know_t *k);
/* 1 if b contains a: every origin's updates, labels and observations in
 * a are at most b's (an origin b lacks counts 0).  Pure. */
int rs_know_within(const rs_know_t *a, const rs_know_t *b);
/* 1 if a and b hold the same counts for the same origins. */
int rs_know_equal(const rs_know_t *a, const rs_know_t *b);

/* ------------------------------------------------------------ the rule */

typedef struct rs_combine_input_s {
    const char *instance;        /* who published it                       */
    const char *version;         /* its name                               */
    const rs_know_t *know;       /* what it learned                        */
} rs_combine_input_t;

typedef enum rs_combine_action_e {
    RS_COMBINE_NONE = 0,         /* self's version is the answer           */
    RS_COMBINE_ADOPT = 1,        /* take input `pick` as it is             */
    RS_COMBINE_AVERAGE = 2       /* average the inputs with weight > 0     */
} rs_combine_action_t;

typedef struct rs_combine_plan_s {
    int action;                  /* rs_combine_action_t                    */
    int pick;                    /* ADOPT: the input                       */
    int n;                       /* inputs                                 */
    int navg;                    /* AVERAGE: inputs with weight > 0        */
    double w[RS_COMBINE_INPUTS]; /* exclusive updates (parameter weights)  */
    double k[RS_COMBINE_INPUTS]; /* exclusive observations (standardiser)  */
    rs_know_t know;              /* AVERAGE: what the result knows         */
    char version[RS_VERSION_MAX];/* AVERAGE: the result's name             */
    uint64_t number;             /* ... and number                         */
} rs_combine_plan_t;

/* Plan the combination of in[0..n) (n <= RS_COMBINE_INPUTS; instance ids
 * strictly increasing by strcmp, each version a valid name of the same
 * "<kind>-<8 hex>" lineage), self = the caller's own input.  Pure.
 * RS_ERR_INVALID (errstr says which input) for unordered or duplicate
 * instances, bad names, another lineage, n out of range; RS_ERR_TOOBIG if
 * the union of the knowledge has too many origins. */
rs_err_t rs_combine_plan(const rs_combine_input_t *in, int n, int self,
                         rs_combine_plan_t *plan, char *errstr,
                         size_t errstr_size);

/* Carry out an AVERAGE plan on the models of its inputs (models[i] for
 * in[i] of the plan; those with weight 0 are not read and may be NULL):
 * a new model (*out, the caller's) of models' kind, architecture and
 * feature names, loaded with `conf` (as rs_model_load: may be NULL), whose
 * arrays are the weighted means and whose standardiser is pooled
 * (design note); counters: updates = the sum of the plan's knowledge,
 * positives / negatives / horizon negatives, optimiser step, weight
 * average count and times = the largest of the inputs; drift state and
 * settings of the first input with weight > 0.  Named plan->version.
 * RS_ERR_INVALID if the models are not of one kind, architecture and
 * feature layout (errstr names the difference).  Deterministic: the same
 * models and plan give the same bytes.  Cold path (allocates); the
 * caller's thread (models are only read... but brought up to date: see
 * model_int.h rs_model_view). */
rs_err_t rs_combine_models(rs_model_t *const *models,
                           const rs_combine_plan_t *plan,
                           const rs_model_conf_t *conf, rs_model_t **out,
                           char *errstr, size_t errstr_size);

/* --------------------------------------------------------- the message */

#define RS_COMBINE_MSG_COMBINED 0x1u /* an AVERAGE result                  */
#define RS_COMBINE_MSG_ADOPTED  0x2u /* another instance's version, taken  */

typedef struct rs_combine_msg_s {
    char instance[RS_COMBINE_ID_MAX];
    char version[RS_VERSION_MAX];
    uint32_t flags;              /* RS_COMBINE_MSG_*                       */
    int64_t produced_ms;
    rs_know_t know;
    int ninputs;                 /* COMBINED: what was averaged            */
    struct {
        char version[RS_VERSION_MAX];
        double weight;           /* normalised, in [0, 1]                  */
    } inputs[RS_COMBINE_INPUTS];
    const uint8_t *model;        /* decode: into the decoded buffer        */
    size_t model_len;
} rs_combine_msg_t;

/* Encode msg (its model / model_len: the model bytes, may be 0) into a new
 * buffer (*buf, *len; rs_free it).  RS_ERR_INVALID (errstr) for fields the
 * decoder would refuse.  Cold path. */
rs_err_t rs_combine_msg_encode(const rs_combine_msg_t *msg, uint8_t **buf,
                               size_t *len, char *errstr, size_t errstr_size);
/* Decode buf[len] into *msg (msg->model points into buf).  RS_ERR_CORRUPT
 * with errstr naming the field for anything malformed: magic, format,
 * truncation, lengths, a bad instance id, version or origin name, an
 * origin twice, labels above updates, a weight outside [0, 1], trailing
 * bytes, checksum.  The model bytes are not parsed (rs_model_load_mem
 * does).  No allocation, no I/O. */
rs_err_t rs_combine_msg_decode(const void *buf, size_t len,
                               rs_combine_msg_t *msg, char *errstr,
                               size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_COMBINE_H */
