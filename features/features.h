/* features.h -- per-entity and per-counterparty sliding-window features.
 *
 * Design note
 * -----------
 * rs_features_process() turns one event into a fixed-layout float vector
 * computed from the state BEFORE the event (the event never counts in its
 * own features), then adds the event to the state.  Everything is in EVENT
 * time: windows end at the event's own timestamp, and "now" for expiry is
 * the watermark (the largest event time seen so far).
 *
 * State (all preallocated by rs_features_new; no malloc afterwards):
 *  - entity table: open addressing (linear probing) over fixed-size slots
 *    from a pool of `max_keys`.  Keys are the 64-bit rs_hash_str() of the
 *    id; only the hash is stored, so two ids with the same 64-bit hash share
 *    state (accepted: ~1 in 10^10 for 10^5 keys).  A slot holds a ring of the
 *    last `history` events {time, amount, 32-bit counterparty hash} kept in
 *    time order (late events are inserted in place), a small ring of fraud
 *    label arrival times, and a short ring of values per sensor field.
 *  - counterparty table: same scheme, pool of `max_counterparties`; a slot
 *    holds hour buckets (24) and label-window buckets (30) of event counts,
 *    and a small ring of fraud label arrival times.
 *  - event index: a bounded FIFO of the last `label_index` event ids ->
 *    (entity, counterparty, event time), so a label (which carries only the
 *    event id) can be routed to the right keys.
 * Keys idle for more than `key_ttl` of event time are forgotten: an
 * incremental sweep checks a few slots per call (never a full-table pause)
 * and a key found idle on lookup is reset, so the result does not depend on
 * when the sweep ran.  When a pool is full, the least-recently-seen key of a
 * bounded probe (8 slots) is evicted and counted.
 * The full semantics and the feature table are in docs/features.md.
 *
 * Threads: an rs_features_t is owned by one thread (later: one per
 * partition group).  No function here may be called concurrently on the
 * same handle; distinct handles are independent.
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
#define RS_FEATURES_MAX_SENSORS   8   /* sensor fields in `sensor_fields`      */
#define RS_FEATURES_SENSOR_HIST   8   /* values kept per entity per field      */
#define RS_FEATURES_ENT_LABELS    8   /* fraud labels kept per entity          */
#define RS_FEATURES_CP_LABELS    16   /* fraud labels kept per counterparty    */
#define RS_FEATURES_NAME_MAX     64   /* feature name incl. NUL                */

/* Flags returned by rs_features_process() in *flags_out. */
#define RS_FEATURES_FLAG_LATE       0x1u /* older than watermark - allowed_lateness
                                          * (== RS_SCORE_FLAG_LATE)            */
#define RS_FEATURES_FLAG_NEW_ENTITY 0x2u /* no state for the entity before     */
#define RS_FEATURES_FLAG_DROPPED    0x4u /* older than a full history ring: scored
                                          * but not kept                       */

typedef struct rs_features_conf_s {
    int64_t max_keys;           /* entity slots                              */
    int64_t max_counterparties; /* counterparty slots                        */
    int64_t history;            /* events kept per entity                    */
    int64_t key_ttl;            /* ms of event time before an idle key goes  */
    int64_t allowed_lateness;   /* ms; older events are flagged late         */
    double small_amount;        /* "small" amount threshold (card testing)   */
    int64_t label_window;       /* ms; window of the label-aware features    */
    int64_t label_index;        /* recent event ids remembered for labels    */
    char sensor_fields[256];    /* comma list of numeric field names         */
} rs_features_conf_t;

/* Fill `conf` with the defaults of the field table. */
void rs_features_conf_init(rs_features_conf_t *conf);

/* The `features:` config section writing into `conf`: fills `*sec` (owned
 * by the caller, must outlive the rs_conf_t it is added to).  The field
 * table itself is static. */
void rs_features_conf_section(rs_conf_section_t *sec, rs_features_conf_t *conf);

/* The field table (for docs and tests). */
const rs_conf_field_t *rs_features_conf_fields(int *nfields);

typedef struct rs_features_s rs_features_t;

/* Allocate all state for `conf` (copied; conf may be freed afterwards).
 * Returns NULL and fills errstr on a bad configuration.  Destroy with
 * rs_features_destroy().  Any thread; the handle then belongs to one. */
rs_features_t *rs_features_new(const rs_features_conf_t *conf, char *errstr,
                               size_t errstr_size);
/* Free everything.  NULL is a no-op. */
void rs_features_destroy(rs_features_t *f);

/* Length of the feature vector: fixed for the life of the handle
 * (17 + 2 * number of sensor fields). */
int rs_features_dim(const rs_features_t *f);
/* Stable snake_case name of feature i ("ent_cnt_1h"), or NULL if out of
 * range.  Owned by f. */
const char *rs_features_name(const rs_features_t *f, int i);
/* One-line meaning of feature i, or NULL.  Owned by f. */
const char *rs_features_desc(const rs_features_t *f, int i);

/* Compute the features of `ev` into out[dim] from the state before it, then
 * add it.  *flags_out (may be NULL) gets RS_FEATURES_FLAG_*.  Returns
 * RS_ERR_INVALID (state untouched, out unspecified) if event_time_ms <= 0,
 * the amount is not finite or entity_id is empty.  Never allocates.  The
 * owner thread only. */
rs_err_t rs_features_process(rs_features_t *f, const rs_event_t *ev,
                             float *out /* [dim] */, uint32_t *flags_out);

/* Apply a label: routed through the event index to the labelled event's
 * entity and counterparty.  A fraud label (value >= 0.5) counts in later
 * events' label features from its arrival time
 * max(label_time_ms, labelled event's time) on; genuine labels only mark
 * the event as labelled.  Returns RS_ERR_NOTFOUND for events unknown to the
 * index (never seen or pushed out) -- counted and ignored -- and RS_OK
 * otherwise (a second label for the same event is counted as duplicate and
 * ignored).  The owner thread only. */
rs_err_t rs_features_label(rs_features_t *f, const rs_label_t *lb);

/* Plain-words reason for feature i having `value` ("amount 8.3x the 7-day
 * mean", "5 small amounts in the last hour").  Writes at most size bytes
 * incl. NUL; returns the length written (truncated text is NUL-terminated),
 * or -1 if i is out of range. */
int rs_features_reason(const rs_features_t *f, int i, float value, char *buf,
                       size_t size);

typedef struct rs_features_stats_s {
    uint64_t events;            /* processed                                 */
    uint64_t entity_keys;       /* live entity slots                         */
    uint64_t cp_keys;           /* live counterparty slots                   */
    uint64_t evictions;         /* keys evicted because a pool was full      */
    uint64_t expirations;       /* keys forgotten after key_ttl              */
    uint64_t late;              /* events flagged RS_FEATURES_FLAG_LATE      */
    uint64_t dropped;           /* events too old for a full history ring    */
    uint64_t labels_applied;
    uint64_t labels_unknown;    /* event not in the index                    */
    uint64_t labels_duplicate;  /* event already labelled                    */
    int64_t watermark_ms;       /* largest event time seen                   */
    uint64_t mem_bytes;         /* preallocated state                        */
    uint64_t entity_slot_bytes; /* bytes per entity slot                     */
} rs_features_stats_t;

/* Counters snapshot.  The owner thread only. */
void rs_features_stats(const rs_features_t *f, rs_features_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_FEATURES_H */
