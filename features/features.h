/* features.h -- declarative sliding-window features in event time.
 *
 * Design note
 * -----------
 * A feature spec (config `features.specs`, or a preset) declares, per KEY
 * (entity, counterparty, event type or any categorical field), one window
 * (a duration, the last N events, or the whole kept history; optionally
 * shifted back by an offset) and a list of aggregations over a VALUE
 * (amount or a numeric field).  rs_features_new() compiles the specs into a
 * fixed layout: one float per (spec, aggregation), in spec order.
 *
 * rs_features_process() computes the vector of an event from the state
 * BEFORE it (the event itself counts only in specs declared
 * `include_current`), then adds the event.  Everything is in EVENT time;
 * "now" for expiry and lateness is the watermark (largest event time seen).
 *
 * State (all preallocated by rs_features_new; no malloc afterwards):
 *  - one key table per distinct key of the specs: open addressing over a
 *    pool of fixed-size slots (`max_keys` for the entity table,
 *    `max_counterparties` for every other key).  A slot holds a ring of
 *    the key's last `history` events {time, values, hashed fields} sorted
 *    by time (late events are inserted in place) -- the per-key memory cap,
 *    counted in stats.cap_hits when reached -- and, if a spec of the key is
 *    label-aware, a ring of `labels_per_key` fraud labels {event time,
 *    arrival time}.  Keys are 64-bit rs_hash_str() of the id.
 *  - an event index: a bounded FIFO of the last `label_index` event ids ->
 *    (time, key of every table), so a label can be routed to its keys.
 * Idle keys (no event for `key_ttl` of event time) are forgotten by an
 * incremental sweep (a few slots per event) and lazily on lookup, so
 * results never depend on when the sweep ran.  A full pool evicts the
 * least recently seen key of an 8-slot probe (stats.evictions).
 *
 * Checkpoints (rs_features_checkpoint_*) serialize the state with a
 * copy-before-write rule so that the file is the exact state at begin()
 * while scoring continues between small steps; see docs/features.md.
 *
 * Threads: an rs_features_t is owned by one thread.  No function here may be
 * called concurrently on the same handle; distinct handles are independent.
 * The full semantics, grammar and defaults are in docs/features.md.
 */
#ifndef RS_FEATURES_H
#define RS_FEATURES_H

#include "common/common.h"
#include "common/config.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time caps (documented in docs/features.md). */
#define RS_FEATURES_MAX_SENSORS   8   /* fields in `sensor_fields`            */
#define RS_FEATURES_MAX_SPECS    64   /* specs after expansion                */
#define RS_FEATURES_MAX_TABLES    4   /* distinct keys                        */
#define RS_FEATURES_MAX_VALUES    9   /* distinct value fields per key: amount
                                       * + RS_FEATURES_MAX_SENSORS             */
#define RS_FEATURES_MAX_AUX       4   /* distinct hashed fields per key       */
#define RS_FEATURES_MAX_DIM     256   /* features in the vector               */
#define RS_FEATURES_NAME_MAX     64   /* feature name incl. NUL               */

/* Flags returned by rs_features_process() in *flags_out. */
#define RS_FEATURES_FLAG_LATE       0x1u /* older than watermark - allowed_lateness
                                          * (== RS_SCORE_FLAG_LATE)            */
#define RS_FEATURES_FLAG_NEW_ENTITY 0x2u /* no state for the entity before     */
#define RS_FEATURES_FLAG_DROPPED    0x4u /* older than a full history ring: scored
                                          * but not kept                       */

/* Aggregations (bit i of rs_features_spec_t.aggs).  The layout of a spec
 * lists its aggregations in this order. */
typedef enum rs_features_agg_e {
    RS_FEATURES_AGG_COUNT = 0,   /* events in the window                    */
    RS_FEATURES_AGG_SUM,         /* sum of the value                        */
    RS_FEATURES_AGG_MEAN,        /* mean (0 if none)                        */
    RS_FEATURES_AGG_STD,         /* population std (0 if none)              */
    RS_FEATURES_AGG_MIN,         /* (0 if none)                             */
    RS_FEATURES_AGG_MAX,         /* (0 if none)                             */
    RS_FEATURES_AGG_COUNT_BELOW, /* events with value < `below`             */
    RS_FEATURES_AGG_DISTINCT,    /* distinct values of `field`              */
    RS_FEATURES_AGG_NEW,         /* 1 if the event's `field` is not in the window */
    RS_FEATURES_AGG_SINCE_LAST,  /* log1p(seconds since the newest event)   */
    RS_FEATURES_AGG_RATIO_MEAN,  /* (x + 1) / (mean + 1)                    */
    RS_FEATURES_AGG_ZSCORE,      /* (x - mean) / (std + 0.01|mean| + 0.01)  */
    RS_FEATURES_AGG_VELOCITY,    /* events per hour                         */
    RS_FEATURES_AGG_FRAUD_COUNT, /* window events with an ARRIVED fraud label */
    RS_FEATURES_AGG_FRAUD_RATE,  /* fraud_count / count                     */
    RS_FEATURES_AGG_LAST,        /* newest value in the window              */
    RS_FEATURES_AGG_SLOPE,       /* least-squares slope of value per hour   */
    RS_FEATURES_AGG_DEVIATION,   /* x - window mean (own baseline)          */
    RS_FEATURES_AGG_CURRENT,     /* x itself                                */
    RS_FEATURES_AGG_CURRENT_LOG1P, /* log1p(max(x, 0))                      */
    /* calendar transforms of the event's own time in features.timezone
     * (they ignore the key, window and value) */
    RS_FEATURES_AGG_HOUR_OF_DAY, /* local hour 0..23                        */
    RS_FEATURES_AGG_DAY_OF_WEEK, /* local day, 0 = Monday .. 6 = Sunday     */
    RS_FEATURES_AGG_NIGHT,       /* 1 if the local hour is in [0, 6)        */
    RS_FEATURES_AGG_WEEKEND,     /* 1 on a local Saturday or Sunday         */
    RS_FEATURES_AGG_HOUR_SIN,    /* sin(2 pi h / 24), h = local fractional hour */
    RS_FEATURES_AGG_HOUR_COS,    /* cos(2 pi h / 24)                        */
    /* the key's BASELINE: running statistics of the value over the key's
     * life (since it was first seen or last reset, rs_features_reset),
     * shrunk towards the fleet's (every key of the table) while the key
     * has few readings (features.baseline_prior); "level" is the window's
     * mean (the event included if include_current), or x without a
     * window */
    RS_FEATURES_AGG_BASE_DEV,    /* level - baseline mean                   */
    RS_FEATURES_AGG_BASE_Z,      /* (level - baseline mean) / baseline std,
                                  * clipped to +-50; 0 if the std is 0      */
    RS_FEATURES_AGG_LIFE,        /* log1p(readings of the key since its life
                                  * began), the event excluded              */
    RS_FEATURES_AGG_BASE_SPREAD, /* log(std of the window / baseline std):
                                  * the noise against the key's own, 0 when
                                  * as usual; clipped to +-log 50; 0 with
                                  * fewer than 2 values or no baseline     */
    RS_FEATURES_AGG_BASE_NOISE,  /* noise growth beyond chance: r - 3 s if
                                  * positive, else 0; r = log(noise of the
                                  * window / the key's own), the noise
                                  * from successive differences, blind to
                                  * the level (a step, drift or daily
                                  * cycle inside the window): median
                                  * |x_i - x_i-1| of the window over the
                                  * mean |d| of the key's life before it,
                                  * each scaled to a sd (/(0.6745 sqrt 2),
                                  * /(2/sqrt pi)), clipped to +-log 50;
                                  * s = sqrt(1.2845^2/n + 0.8264/m), r's
                                  * sampling sd for n successive (so
                                  * dependent) differences in the window
                                  * and m in the baseline (normal noise); 0 with fewer than 2
                                  * differences or no baseline           */
    RS_FEATURES_AGG__CNT
} rs_features_agg_t;

/* Name of an aggregation ("count", "fraud_rate"), or NULL. */
const char *rs_features_agg_name(rs_features_agg_t agg);

/* One compiled spec: a key, a window and aggregations over one value. */
typedef struct rs_features_spec_s {
    char prefix[24];             /* feature name prefix ("ent")             */
    char key[RS_NAME_MAX];       /* entity|counterparty|type|<categorical>  */
    char value[RS_NAME_MAX];     /* amount|<numeric field>                  */
    char field[RS_NAME_MAX];     /* distinct/new: entity|counterparty|type|
                                  * <categorical>                           */
    int64_t window_ms;           /* 0: no duration bound                    */
    int64_t last_n;              /* >0: the last N events                   */
    int64_t offset_ms;           /* window ends offset_ms before the event  */
    int64_t label_delay_ms;      /* labels count from arrival + delay       */
    int64_t history;             /* ring size wanted for the key (0: global) */
    int64_t bucket_ms;           /* >0: bucketed window (whole buckets of
                                  * this width, ending at or before
                                  * t - offset; count/sum/mean/velocity/
                                  * fraud_count/fraud_rate only)            */
    int maturity_offset;         /* offset is features.label_maturity
                                  * (resolved when the specs are listed)   */
    double below;                /* count_below threshold                   */
    int include_current;         /* the event counts in its own window      */
    uint32_t aggs;               /* bit set of rs_features_agg_t            */
} rs_features_spec_t;

typedef struct rs_features_conf_s {
    int64_t max_keys;           /* entity slots                              */
    int64_t max_counterparties; /* slots of every other key                  */
    int64_t history;            /* events kept per key                       */
    int64_t key_ttl;            /* ms of event time before an idle key goes  */
    int64_t allowed_lateness;   /* ms; older events are flagged late         */
    double small_amount;        /* below threshold of the card preset        */
    int64_t label_window;       /* ms; window of the preset's label features */
    int64_t label_index;        /* recent event ids remembered for labels    */
    char sensor_fields[256];    /* comma list of the sensor preset's fields  */
    char nouns[256];            /* words: "event=payment,entity=card,..."    */
    int preset;                 /* 0 cards, 1 sensors, 2 none                */
    int64_t labels_per_key;     /* fraud labels kept per key                 */
    int64_t label_maturity;     /* ms; offset of the cards preset's
                                 * counterparty windows: every event in them
                                 * is this old (0 = the label delay, which
                                 * the caller resolves before
                                 * rs_features_new; if left 0, no offset)   */
    char timezone[64];          /* IANA zone of the calendar transforms     */
    int64_t baseline_prior;     /* fleet readings a key's baseline starts
                                 * with (cold start: a new key is scored
                                 * against the fleet)                       */
    double baseline_limit;      /* a reading farther than this many sds
                                 * from its key's baseline is not learned
                                 * by it (0: every reading is)              */
    int64_t baseline_learn_first; /* readings of a life learned whatever
                                 * they are before the limit applies        */
    char sensor_spans[64];      /* sensors preset: comma list of trend spans
                                 * in readings                              */
    char setting_fields[128];   /* operating settings (features/opcond.h):
                                 * comma list; "" = no normalisation        */
    int64_t conditions;         /* at most this many operating conditions
                                 * (0: RS_OPCOND_MAX_CONDITIONS)            */
    int sensor_noise;           /* sensors preset: + base_noise of the
                                 * longest span per field (default on)      */
    /* From the raw `specs:` / `extra_specs:` keys (rs_features_conf_add_specs).
     * specs replace the preset's, extra_specs are appended to them. */
    int nspecs, nextra;
    int specs_set;              /* `specs:` given (even empty)               */
    rs_features_spec_t specs[RS_FEATURES_MAX_SPECS];
    rs_features_spec_t extra[RS_FEATURES_MAX_SPECS];
} rs_features_conf_t;

/* Fill `conf` with the defaults of the field table (preset cards). */
void rs_features_conf_init(rs_features_conf_t *conf);

/* The `features:` config section writing into `conf`: fills `*sec` (owned
 * by the caller, must outlive the rs_conf_t it is added to).  The field
 * table itself is static.  Covers the scalar keys only; use
 * rs_features_conf_add() to also accept `specs:` and `extra_specs:`. */
void rs_features_conf_section(rs_conf_section_t *sec, rs_features_conf_t *conf);

/* Attach the `specs:` / `extra_specs:` parser to section "features" of
 * `cfg` (after rs_conf_add_section of the table above, or alone).  `conf`
 * must outlive cfg.  Errors name the key and line. */
rs_err_t rs_features_conf_add_specs(rs_conf_t *cfg, rs_features_conf_t *conf,
                                    char *errstr, size_t errstr_size);

/* Parse one spec list node (a YAML sequence) into conf->specs (extra = 0)
 * or conf->extra (extra = 1), expanding `windows:` and `values:` lists.
 * Used by the hook; public for tests and tools. */
rs_err_t rs_features_specs_parse(rs_features_conf_t *conf,
                                 const rs_conf_node_t *seq, int extra,
                                 char *errstr, size_t errstr_size);

/* The field table (for docs and tests). */
const rs_conf_field_t *rs_features_conf_fields(int *nfields);

/* The specs that rs_features_new would compile for `conf` (preset or
 * explicit, then extras) into out[RS_FEATURES_MAX_SPECS]; returns their
 * number or -1 with errstr set. */
int rs_features_conf_specs(const rs_features_conf_t *conf,
                           rs_features_spec_t *out, char *errstr,
                           size_t errstr_size);

typedef struct rs_features_s rs_features_t;

/* Memory rs_features_new would preallocate for `conf`, without allocating
 * it: items[0..*n) (n <= 3; max >= 3) name the keys that size it
 * (features.max_keys, features.max_counterparties, features.label_index),
 * *dim gets the vector length.  RS_ERR_CONFIG with errstr for a bad
 * configuration (as rs_features_new).  Cold path (compiles the specs).
 * @locality any thread */
rs_err_t rs_features_conf_mem(const rs_features_conf_t *conf,
                              rs_mem_item_t *items, int max, int *n,
                              int *dim, char *errstr, size_t errstr_size);

/* Allocate all state for `conf` (copied; conf may be freed afterwards).
 * Returns NULL and fills errstr on a bad configuration.  Destroy with
 * rs_features_destroy().  Any thread; the handle then belongs to one. */
rs_features_t *rs_features_new(const rs_features_conf_t *conf, char *errstr,
                               size_t errstr_size);
/* Free everything.  NULL is a no-op. */
void rs_features_destroy(rs_features_t *f);

/* Length of the feature vector: fixed for the life of the handle. */
int rs_features_dim(const rs_features_t *f);
/* Stable snake_case name of feature i ("ent_count_1h"), or NULL if out of
 * range.  Owned by f. */
const char *rs_features_name(const rs_features_t *f, int i);
/* One-line meaning of feature i, or NULL.  Owned by f. */
const char *rs_features_desc(const rs_features_t *f, int i);
/* 64-bit fingerprint of the layout and state geometry (names, key tables,
 * slot sizes, pool sizes): a checkpoint loads only into a handle with the
 * same fingerprint. */
uint64_t rs_features_fingerprint(const rs_features_t *f);

/* Compute the features of `ev` into out[dim] from the state before it, then
 * add it.  *flags_out (may be NULL) gets RS_FEATURES_FLAG_*.  Returns
 * RS_ERR_INVALID (state untouched, out unspecified) if event_time_ms <= 0,
 * the amount is negative or not finite or entity_id is empty.  Never
 * allocates.  The owner thread only. */
rs_err_t rs_features_process(rs_features_t *f, const rs_event_t *ev,
                             float *out /* [dim] */, uint32_t *flags_out);

/* Scope of rs_features_process (scale-out, scoring/cpstage.h): the
 * tables it computes and updates.  ALL (the default): every key.  ENTITY:
 * only the entity table's specs (the calendar transforms included); the
 * outputs of every other spec are left in out[] as the caller put them
 * there (the counterparty stage's values), and those tables are neither
 * read nor updated.  SHARED: only the specs of the other keys
 * (counterparty, fields); the entity specs' outputs are left as they are.
 * Labels reach only the tables of the scope (the event index keeps the
 * keys of those).  Set it before the first event.  The owner thread. */
#define RS_FEATURES_SCOPE_ALL    0
#define RS_FEATURES_SCOPE_ENTITY 1
#define RS_FEATURES_SCOPE_SHARED 2
void rs_features_set_scope(rs_features_t *f, int scope);
/* 1 if feature i is computed from a table other than the entity's (a
 * SHARED-scope feature: counterparty or another non-entity key), else 0
 * (also for i out of range).  Any thread (layout only). */
int rs_features_is_shared(const rs_features_t *f, int i);

/* Apply a label: routed through the event index to the labelled event's
 * keys.  A fraud label (value >= 0.5) arrives at
 * max(label_time_ms, labelled event's time) (the watermark if label_time_ms
 * is 0) and counts in a later event at t only if arrival + label_delay < t.
 * Genuine labels only mark the event as labelled.  RS_ERR_NOTFOUND for
 * events unknown to the index (counted, ignored); a second label of an
 * event is counted as duplicate and ignored (RS_OK).  The owner thread. */
rs_err_t rs_features_label(rs_features_t *f, const rs_label_t *lb);

/* Start a new life for entity `entity_id` (a repair, a replacement, a
 * failure that was fixed): its baselines (RS_FEATURES_AGG_BASE_*, LIFE)
 * and its kept readings are cleared, so the next reading is scored
 * against the fleet as a new machine's.  RS_ERR_NOTFOUND if the entity has
 * no state.  The owner thread. */
rs_err_t rs_features_reset(rs_features_t *f, const char *entity_id);

/* Machine reports (maintenance mode, docs/maintenance.md): a label with
 * value > 0 is a FAILURE of its entity, value 0 with event_id = entity_id
 * a REPAIR, value 0 of a reading nothing (running machines' readings
 * become negatives at maturity).  The one rule serve (scoring/alerts.c)
 * and the offline replay share. */
typedef enum rs_features_report_e {
    RS_FEATURES_REPORT_NONE = 0,
    RS_FEATURES_REPORT_FAILURE,
    RS_FEATURES_REPORT_REPAIR
} rs_features_report_t;

/* The kind of report lb is (no state; any thread). */
rs_features_report_t rs_features_report_kind(const rs_label_t *lb);

/* Apply report lb at its place in the input: a failure or a repair starts
 * a new life for the machine (rs_features_reset); nothing else, and never
 * a label-aware feature (rs_features_label is not called).  Returns its
 * kind.  The owner thread of f. */
rs_features_report_t rs_features_report(rs_features_t *f,
                                        const rs_label_t *lb);

/* Features whose value has been the same for every event processed so
 * far (at least 2 events): their indexes into idx[cap], ascending; returns
 * how many there are (may exceed cap).  A constant feature carries no
 * information (e.g. a window shorter than the reading cadence).  The
 * owner thread. */
int rs_features_constant(const rs_features_t *f, int *idx, int cap);
/* The value feature i had for the first event (0 before any). */
float rs_features_constant_value(const rs_features_t *f, int i);

/* Feature i in words, without its value, from its spec (key, window,
 * offset, aggregation, value) and `nouns`: "payments at this merchant in
 * the last day", "amount vs this card's average over the last 7 days".
 * Writes at most size bytes incl. NUL; returns the length written, or -1
 * if i is out of range.  No allocation.  Any thread (reads only state
 * fixed at rs_features_new). */
int rs_features_words(const rs_features_t *f, int i, char *buf, size_t size);

/* Feature i with its value in words, where x[dim] is the event's whole
 * vector: "7 payments in the last hour, usually 0.1".  The usual level
 * comes from another feature of the layout when one fits (same key, no
 * offset, a longer duration window: a count or velocity for counts,
 * velocities and the time since the previous event; a mean of the same
 * value for current, newest and mean values), else it is left out.
 * Same return values and threads as rs_features_words. */
int rs_features_reason(const rs_features_t *f, int i, const float *x,
                       char *buf, size_t size);

typedef struct rs_features_stats_s {
    uint64_t events;            /* processed                                 */
    uint64_t entity_keys;       /* live entity slots                         */
    uint64_t cp_keys;           /* live slots of every other key table       */
    uint64_t evictions;         /* keys evicted because a pool was full      */
    uint64_t expirations;       /* keys forgotten after key_ttl              */
    uint64_t late;              /* events flagged RS_FEATURES_FLAG_LATE      */
    uint64_t dropped;           /* events too old for a full history ring    */
    uint64_t labels_applied;
    uint64_t labels_unknown;    /* event not in the index                    */
    uint64_t labels_duplicate;  /* event already labelled                    */
    int64_t watermark_ms;       /* largest event time seen                   */
    int64_t start_ms;           /* earliest event time seen (0 if unknown)   */
    uint64_t mem_bytes;         /* preallocated state                        */
    uint64_t entity_slot_bytes; /* bytes per entity slot                     */
    uint64_t cap_hits;          /* inserts into a full ring (per-key cap)    */
    uint64_t labels_dropped;    /* fraud labels pushed out of a full ring    */
    uint64_t resets;            /* entities given a new life (rs_features_reset) */
} rs_features_stats_t;

/* Counters snapshot.  The owner thread only. */
void rs_features_stats(const rs_features_t *f, rs_features_stats_t *st);

/* ------------------------------------------------------------ checkpoints
 *
 * File: 96-byte header (magic "RSFCKPT1", format version, layout
 * fingerprint, body length, body checksum, header checksum) then the body:
 * the caller's opaque blob (e.g. Kafka offsets), then one record per live
 * key and per event-index entry.  Written to PATH.tmp, fsynced, renamed.
 *
 * Incremental path (scoring is never paused for more than one step):
 *   rs_features_checkpoint_begin(f, path, blob, len)  -- O(1) + header
 *   while (rs_features_checkpoint_step(f, budget) == RS_ERR_AGAIN)
 *       ... keep calling rs_features_process/label in between ...
 *   rs_features_checkpoint_end(f)                     -- flush, fsync, rename
 * The file holds exactly the state at begin(): before process/label first
 * modifies a slot or index entry not yet written, that item is written in
 * its begin() state (copy-before-write).  `budget` is the number of slots
 * visited per step (~20-100 ns each; no I/O: records are serialized into
 * memory blocks, written by commit()).  A checkpoint in progress
 * may be cancelled with rs_features_checkpoint_abort (removes PATH.tmp).
 * rs_features_checkpoint_write() does all three at once (shutdown, tools).
 * All: the owner thread only.  Errors: RS_ERR_IO (retriable),
 * RS_ERR_STATE (begin while one is active / step without begin). */
rs_err_t rs_features_checkpoint_begin(rs_features_t *f, const char *path,
                                      const void *blob, size_t blob_len,
                                      char *errstr, size_t errstr_size);
rs_err_t rs_features_checkpoint_step(rs_features_t *f, size_t budget);
rs_err_t rs_features_checkpoint_end(rs_features_t *f, char *errstr,
                                    size_t errstr_size);
void rs_features_checkpoint_abort(rs_features_t *f);
/* end() split in two so the fsync never runs on the scoring thread:
 * detach() (owner thread; finishes the steps, writes the header) hands
 * back the file; rs_features_ckfile_commit() (ANY thread, e.g. a
 * background I/O thread; frees cf) fsyncs, renames over PATH and fsyncs
 * the directory.  A new begin() may start as soon as detach() returned;
 * until commit() returns, PATH still holds the previous checkpoint. */
typedef struct rs_features_ckfile_s rs_features_ckfile_t;
rs_err_t rs_features_checkpoint_detach(rs_features_t *f,
                                       rs_features_ckfile_t **out,
                                       char *errstr, size_t errstr_size);
rs_err_t rs_features_ckfile_commit(rs_features_ckfile_t *cf, char *errstr,
                                   size_t errstr_size);
/* Drop a detached checkpoint instead (ANY thread; frees cf, removes
 * PATH.tmp): PATH keeps the previous checkpoint.  NULL is a no-op. */
void rs_features_ckfile_discard(rs_features_ckfile_t *cf);
rs_err_t rs_features_checkpoint_write(rs_features_t *f, const char *path,
                                      const void *blob, size_t blob_len,
                                      char *errstr, size_t errstr_size);

/* Replace the state of `f` (fresh or not) by the checkpoint at `path`.
 * On success *blob_out (may be NULL) gets a malloc'd copy of the blob (free
 * with free(); NULL if empty) and *blob_len its length.  RS_ERR_IO if the
 * file cannot be read, RS_ERR_CORRUPT (message says what: bad magic,
 * version, truncated, checksum, layout fingerprint) -- then `f` is reset
 * to empty, never half-loaded.  The owner thread. */
rs_err_t rs_features_checkpoint_read(rs_features_t *f, const char *path,
                                     void **blob_out, size_t *blob_len,
                                     char *errstr, size_t errstr_size);

/* ------------------------------------------------ partition-local state
 *
 * Entity state follows its input partition across a consumer group
 * (docs/features.md, "State and partitions"): every ENTITY slot is tagged
 * with the partition of the entity's newest event, every event-index
 * entry with its event's partition.  The other key tables (counterparty,
 * categorical) and the fleet baselines are instance-wide: they never move.
 * The stream format is in features_part.c (no I/O, fuzzed through
 * fuzz_pstate).  The owner thread only. */

/* The partition of the events processed from now on (-1: none/unknown;
 * beyond 65533: unknown). */
void rs_features_set_partition(rs_features_t *f, int32_t partition);

/* The entity slots and event-index entries of `partition` as a stream
 * into buf[cap]: *len gets its size; RS_ERR_TOOBIG if cap is smaller
 * (nothing usable written; call with buf NULL, cap 0 to size).  *nkeys
 * (may be NULL) gets the entity slots written. */
rs_err_t rs_features_part_write(const rs_features_t *f, int32_t partition,
                                void *buf, size_t cap, size_t *len,
                                uint64_t *nkeys);
/* The same stream format for one entity's slot (RS_ERR_NOTFOUND if it
 * has none) or one event's index entry (a changelog record). */
rs_err_t rs_features_entity_write(const rs_features_t *f,
                                  const char *entity_id, void *buf,
                                  size_t cap, size_t *len);
rs_err_t rs_features_event_write(const rs_features_t *f, const char *event_id,
                                 void *buf, size_t cap, size_t *len);
/* Import a stream (upsert: a present key or event is replaced), tagging
 * everything with `partition`.  RS_ERR_CORRUPT with errstr for a
 * malformed stream or another layout's: the partition's state is then
 * dropped (never half-loaded); RS_ERR_STATE while a checkpoint is in
 * progress.  *nkeys gets the entity slots read. */
rs_err_t rs_features_part_read(rs_features_t *f, int32_t partition,
                               const void *buf, size_t len, uint64_t *nkeys,
                               char *errstr, size_t errstr_size);
/* Forget the partition's entity slots and index entries.  RS_ERR_STATE
 * while a checkpoint is in progress (abort it first). */
rs_err_t rs_features_part_drop(rs_features_t *f, int32_t partition,
                               uint64_t *nkeys);
/* Changelog support: remember the event-index entries pushed out of the
 * index (features.label_index full), at most `cap` between two takes
 * (0: stop); take returns how many there are, *ids / *parts (owned by f,
 * valid until the next process call) their event id hashes and
 * partitions, *lost (may be NULL) those beyond cap since the last take. */
void rs_features_track_gone(rs_features_t *f, uint32_t cap);
/* The same tracking (on with rs_features_track_gone) for entity slots that
 * left by key_ttl or eviction (not rs_features_part_drop /
 * rs_features_entity_drop), at most 4 x cap between two takes: take
 * returns how many, *keys (rs_hash_str of the entity id; 1 for 0) and
 * *parts (owned by f, valid until the next process call), *lost (may be
 * NULL) those beyond the cap.  Issue 13: changelog tombstones. */
int rs_features_ents_gone_take(rs_features_t *f, const uint64_t **keys,
                               const int32_t **parts, uint64_t *lost);
/* Forget the entity slot of key `key` (as above) if it belongs to
 * `partition` (a changelog tombstone); 1 if there was one. */
int rs_features_entity_drop(rs_features_t *f, int32_t partition,
                            uint64_t key);
int rs_features_gone_take(rs_features_t *f, const uint64_t **ids,
                          const int32_t **parts, uint64_t *lost);

/* The partitions with state here into parts[0..max); returns how many
 * there are (may exceed max).  Cold path (walks the entity pool). */
int rs_features_part_list(const rs_features_t *f, int32_t *parts, int max);

/* ---------------------------------------------------------- offline path
 *
 * Replay a file of events (and optionally a file of labels) through the
 * SAME rs_features_process / rs_features_label calls the service makes, so
 * exported training features equal served ones.  Labels (JSON lines,
 * rs_label_from_json, in label-time order) are merged by time: before an
 * event at t, every pending label with label_time_ms < t is applied (a
 * label with no time is applied before the next event).  Events are JSON
 * lines (rs_event_from_json), foreign JSON lines (rs_event_from_json_map)
 * or CSV with a header (rs_csv_*), the latter two through `map`.  With
 * `column_labels` (and no labels file), the label column of a CSV/foreign
 * JSON row (`map->label`) is a label of that event that becomes visible at
 * event time + `label_delay_ms`, as `riskstream eval` replays it: before
 * an event at t every label visible at or before t is applied, labels file
 * or column alike, in visible-time order (ties first in, first out).  Bad
 * lines are counted and skipped.  This is the one part of features/ that
 * reads files (it only reads the FILE*s it is given). */
typedef int (*rs_features_row_fn)(void *opaque, const rs_event_t *ev,
                                  const float *x /* [dim] */, uint32_t flags);

typedef struct rs_features_replay_s {
    FILE *events;               /* required                                  */
    int format;                 /* 0 JSON lines, 1 CSV, 2 foreign JSON lines,
                                 * 3 run-to-failure rows (rtf; with
                                 * rtf->failures each unit's last cycle is a
                                 * failure: a column label that resets the
                                 * unit's baselines, rs_features_reset,
                                 * instead of a fraud label; the file is
                                 * read twice, so not a pipe) */
    const rs_rtf_conf_t *rtf;   /* format 3; NULL = defaults                 */
    const rs_csv_map_t *map;    /* formats 1 and 2; NULL = defaults          */
    FILE *labels;               /* JSON lines of labels, or NULL             */
    int column_labels;          /* formats 1, 2: labels from the label column
                                 * (ignored when `labels` is given)          */
    int64_t label_delay_ms;     /* column labels: visible at event time + this */
    int maintenance;            /* 1: labels are machine reports, as serve
                                 * and eval apply them (docs/maintenance.md):
                                 * a labels file's lines go through
                                 * rs_features_report (a failure or a repair
                                 * resets the machine, a reading's value 0
                                 * is ignored, never rs_features_label); in a
                                 * label column the last positive of each
                                 * run of a machine's positives is its
                                 * failure (eval's rule), visible at its
                                 * event time + label_delay_ms */
    rs_features_row_fn row;     /* each scored event; nonzero return stops   */
    void (*progress)(void *opaque, uint64_t bytes_read); /* ~every 1 MiB     */
    void *opaque;
} rs_features_replay_t;

typedef struct rs_features_replay_stats_s {
    uint64_t events;            /* scored                                    */
    uint64_t labels;            /* labels applied (incl. unknown): file lines
                                 * or column values                          */
    uint64_t column_positives;  /* column labels >= 0.5                      */
    uint64_t column_failures;   /* maintenance: failures found in the column  */
    uint64_t failures, repairs, ignored; /* maintenance: labels file lines
                                 * by kind (rs_features_report_kind)         */
    uint64_t bad_lines;         /* undecodable or invalid events             */
    uint64_t bad_labels;        /* undecodable label lines                   */
    uint64_t late;              /* events flagged late                       */
    uint64_t bytes;             /* event bytes read                          */
    char first_error[320];      /* first bad line's message (with line no.)  */
} rs_features_replay_stats_t;

/* Run the replay.  RS_OK at end of input, RS_ERR_IO on a read error,
 * RS_ERR_INVALID if a CSV header is unusable (errstr says why),
 * RS_ERR_AGAIN if `row` asked to stop.  The owner thread of f. */
rs_err_t rs_features_replay(rs_features_t *f, const rs_features_replay_t *rp,
                            rs_features_replay_stats_t *st, char *errstr,
                            size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_FEATURES_H */
