/* proto.h -- riskstream's records in C and their codecs.
 *
 * The records (rs_event_t, rs_label_t, rs_score_t) are flat, fixed-size C
 * structs mirroring proto/riskstream.proto, so the per-event path can keep
 * them in preallocated arrays and never allocate.  Strings longer than their
 * buffer are rejected by the decoders (RS_ERR_TOOBIG), never truncated.
 *
 * Codecs do no I/O: they take a buffer and return a record or an error with
 * a message naming the bad field ("field 'amount': NaN is not allowed").
 * JSON uses the .proto field names.  Decoders are fuzzed (tests/fuzz).
 *
 * Threads: every function is reentrant and may be called from any thread;
 * the protobuf decoders keep a per-thread arena (rs_proto_arena_size); an
 * rs_csv_t is owned by one thread.
 */
#ifndef RS_PROTO_H
#define RS_PROTO_H

#include <string.h>

#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_SCHEMA_VERSION 1

#define RS_ID_MAX     64   /* ids incl. NUL: event, entity, counterparty  */
#define RS_TYPE_MAX   32   /* event type                                  */
#define RS_NAME_MAX   32   /* field names                                 */
#define RS_CATVAL_MAX 48   /* categorical values                          */
#define RS_MAX_NUMERIC 16  /* numeric fields per event                    */
#define RS_MAX_CATEG   16  /* categorical fields per event                */
#define RS_MAX_ATTEND   8  /* attended events in an explanation           */
#define RS_MAX_CONTRIB  8  /* feature contributions in an explanation     */
#define RS_MAX_EXPERTS  8  /* experts in an explanation                   */
#define RS_MAX_REASONS  4  /* reason strings                              */
#define RS_REASON_MAX 128
#define RS_VERSION_MAX 48  /* model version string                        */

/* Largest accepted input message (bytes); bigger ones are rejected. */
#define RS_MSG_MAX (64 * 1024)

/* An encode buffer of this size always suffices for any valid record, in
 * JSON (worst case: every string byte escaped as \u00XX) or protobuf. */
#define RS_ENCODE_MAX (48 * 1024)

/* Accepted event and label times: [2000-01-01, 2100-01-01) UTC, in ms. */
#define RS_TIME_MIN_MS 946684800000LL
#define RS_TIME_MAX_MS 4102444800000LL

typedef struct rs_numeric_s {
    char name[RS_NAME_MAX];
    double value;
} rs_numeric_t;

typedef struct rs_categ_s {
    char name[RS_NAME_MAX];
    char value[RS_CATVAL_MAX];
} rs_categ_t;

typedef struct rs_event_s {
    char id[RS_ID_MAX];
    char type[RS_TYPE_MAX];
    char entity_id[RS_ID_MAX];
    char counterparty_id[RS_ID_MAX];  /* "" if none */
    int64_t event_time_ms;
    double amount;
    int n_numeric;
    rs_numeric_t numeric[RS_MAX_NUMERIC];
    int n_categ;
    rs_categ_t categ[RS_MAX_CATEG];
} rs_event_t;

typedef struct rs_label_s {
    char event_id[RS_ID_MAX];
    char entity_id[RS_ID_MAX];
    double value;           /* 1 fraud/failure, 0 genuine */
    int64_t label_time_ms;
} rs_label_t;

typedef enum rs_decision_e {
    RS_DECISION_UNSPECIFIED = 0,
    RS_DECISION_APPROVE = 1,
    RS_DECISION_REVIEW = 2,
    RS_DECISION_DECLINE = 3,
    RS_DECISION_ALERT = 4
} rs_decision_t;

/* "approve", "review", "decline", "alert", "unspecified" */
const char *rs_decision_str(rs_decision_t d);
/* -1 if unknown */
int rs_decision_parse(const char *s);

typedef struct rs_attended_s {
    char event_id[RS_ID_MAX];
    int64_t event_time_ms;
    double amount;
    char counterparty_id[RS_ID_MAX];
    double weight;
} rs_attended_t;

typedef struct rs_contrib_s {
    char name[RS_NAME_MAX * 2];
    double value;
    double contribution;
    char text[RS_REASON_MAX];  /* the feature and its value in words; "" if
                                * not worded (older records)             */
} rs_contrib_t;

typedef struct rs_expert_use_s {
    uint32_t expert;
    double gate_weight;
} rs_expert_use_t;

typedef struct rs_explanation_s {
    int n_attended;
    rs_attended_t attended[RS_MAX_ATTEND];
    int n_contrib;
    rs_contrib_t contrib[RS_MAX_CONTRIB];
    int n_experts;
    rs_expert_use_t experts[RS_MAX_EXPERTS];
    int n_reasons;
    char reasons[RS_MAX_REASONS][RS_REASON_MAX];
} rs_explanation_t;

#define RS_SCORE_FLAG_LATE 0x1u
#define RS_SCORE_FLAG_DUPLICATE 0x2u /* event id seen before: the decision
                                      * on record, published again      */

/* The scored event's own fields (EventFields in the .proto), copied into
 * its score so an analyst sees the event from the score record alone. */
typedef struct rs_event_fields_s {
    int present;                /* 0: not carried (records written before
                                 * the field existed); nothing below set */
    char type[RS_TYPE_MAX];
    char counterparty_id[RS_ID_MAX];
    double amount;
    int n_numeric;
    rs_numeric_t numeric[RS_MAX_NUMERIC];
    int n_categ;
    rs_categ_t categ[RS_MAX_CATEG];
} rs_event_fields_t;

/* Fill `ef` from `ev` (present = 1).  No allocation.  @locality any */
void rs_event_fields_from_event(rs_event_fields_t *ef, const rs_event_t *ev);

typedef struct rs_score_s {
    char event_id[RS_ID_MAX];
    char entity_id[RS_ID_MAX];
    double score;
    rs_decision_t decision;
    char model_version[RS_VERSION_MAX];
    int64_t event_time_ms;
    int64_t scored_at_ms;
    int64_t latency_us;
    uint32_t flags;
    int64_t rul;            /* predictive maintenance: estimated remaining
                             * useful life, ms of event time (capped,
                             * maintenance.rul_cap); 0 = no estimate      */
    double alert_score;     /* predictive maintenance: the score the alert
                             * policy decided on (float32 value), when it
                             * differs from `score` (maintenance.cold_start
                             * blend, always > score); 0 = the policy
                             * decided on `score` (or not a reading)      */
    rs_explanation_t explanation;
    rs_event_fields_t event;
} rs_score_t;

/* Input format of a topic or file. */
typedef enum rs_format_e { RS_FORMAT_JSON = 0, RS_FORMAT_PROTOBUF = 1 } rs_format_t;

/* ------------------------------------------------------------- validation */

/* Semantic checks shared by every decoder: required fields present
 * (id, type, entity_id, event_time_ms > 0), amount finite and >= 0,
 * numeric values finite, event time within [2000-01-01, 2100-01-01).
 * Returns RS_OK or RS_ERR_INVALID with errstr naming the field. */
rs_err_t rs_event_validate(const rs_event_t *ev, char *errstr,
                           size_t errstr_size);
rs_err_t rs_label_validate(const rs_label_t *lb, char *errstr,
                           size_t errstr_size);

/* Value of numeric field `name` or NAN if absent. */
double rs_event_numeric(const rs_event_t *ev, const char *name);
/* Value of categorical field `name` or NULL if absent. */
const char *rs_event_categ(const rs_event_t *ev, const char *name);

/* ------------------------------------------------------------------ JSON */

/* Decode one JSON object.  Accepts the .proto field names; numeric_fields
 * and categorical_fields may be given either as arrays of {name,value}
 * or as objects {"temperature": 71.5}.  Unknown fields are ignored
 * (forward compatibility).  `*ev` is fully overwritten.  Validates. */
rs_err_t rs_event_from_json(const char *buf, size_t len, rs_event_t *ev,
                            char *errstr, size_t errstr_size);
rs_err_t rs_label_from_json(const char *buf, size_t len, rs_label_t *lb,
                            char *errstr, size_t errstr_size);
rs_err_t rs_score_from_json(const char *buf, size_t len, rs_score_t *sc,
                            char *errstr, size_t errstr_size);

/* Encode as one line of JSON (no trailing newline) into buf.  Returns the
 * length written (excluding NUL), or -1 if `size` is too small.  No
 * allocation.  Every field is written (canonical array form for
 * numeric_fields/categorical_fields, decision as a lowercase name);
 * doubles use the shortest form that reads back bit-exact; a non-finite
 * double is written as null (read back as 0, as in the proto3 JSON
 * mapping); invalid UTF-8 bytes are written as U+FFFD.  RS_ENCODE_MAX
 * bytes always suffice. */
int rs_event_to_json(const rs_event_t *ev, char *buf, size_t size);
int rs_label_to_json(const rs_label_t *lb, char *buf, size_t size);
int rs_score_to_json(const rs_score_t *sc, char *buf, size_t size);

/* -------------------------------------------------------------- protobuf */

/* Decode a serialized riskstream.v1.Event/Label/Score.  Uses an internal
 * per-thread arena so the protobuf-c unpack does not call malloc after
 * warm-up.  Validates events and labels. */
rs_err_t rs_event_from_pb(const uint8_t *buf, size_t len, rs_event_t *ev,
                          char *errstr, size_t errstr_size);
rs_err_t rs_label_from_pb(const uint8_t *buf, size_t len, rs_label_t *lb,
                          char *errstr, size_t errstr_size);
rs_err_t rs_score_from_pb(const uint8_t *buf, size_t len, rs_score_t *sc,
                          char *errstr, size_t errstr_size);

/* Serialize into buf; returns bytes written or -1 if `size` is too small
 * (or the record is corrupt: a string not NUL-terminated in its buffer, a
 * count out of range).  No allocation.  Note: protobuf-c omits a double
 * equal to 0.0, so -0.0 reads back as +0.0; every other value (NaN
 * payloads included) is bit-exact. */
int rs_event_to_pb(const rs_event_t *ev, uint8_t *buf, size_t size);
int rs_label_to_pb(const rs_label_t *lb, uint8_t *buf, size_t size);
int rs_score_to_pb(const rs_score_t *sc, uint8_t *buf, size_t size);

/* Bytes currently reserved by the calling thread's protobuf decode arena
 * (0 before its first decode).  It starts at 16 KiB, doubles only when a
 * message needs more, never exceeds 4 * RS_MSG_MAX, and is freed when the
 * thread exits.  For metrics and tests. */
size_t rs_proto_arena_size(void);

/* Dispatch on format. */
rs_err_t rs_event_decode(rs_format_t fmt, const void *buf, size_t len,
                         rs_event_t *ev, char *errstr, size_t errstr_size);
rs_err_t rs_label_decode(rs_format_t fmt, const void *buf, size_t len,
                         rs_label_t *lb, char *errstr, size_t errstr_size);
int rs_score_encode(rs_format_t fmt, const rs_score_t *sc, void *buf,
                    size_t size);
int rs_event_encode(rs_format_t fmt, const rs_event_t *ev, void *buf,
                    size_t size);
int rs_label_encode(rs_format_t fmt, const rs_label_t *lb, void *buf,
                    size_t size);

/* ----------------------------------------------------- batch encoding */

/* A caller-owned byte arena for encoded records.  Zero-initialize it (or
 * rs_enc_arena_init with a first size); rs_enc_arena_free releases it.
 * It grows (realloc, doubling) only while a batch needs more than it
 * has, so after the first large batches encoding allocates nothing. */
typedef struct rs_enc_arena_s {
    unsigned char *data;   /* [cap]                                    */
    size_t cap;
    size_t len;            /* bytes used by the last batch             */
} rs_enc_arena_t;

/* Reserve `cap` bytes up front (0: none yet).  @locality the owner */
void rs_enc_arena_init(rs_enc_arena_t *arena, size_t cap);
void rs_enc_arena_free(rs_enc_arena_t *arena);

/* Room for `need` more bytes after arena->len (realloc, doubling from
 * 2 x need when empty); returns arena->data + arena->len, valid until the
 * arena grows again.  @locality the owner */
unsigned char *rs_enc_arena_reserve(rs_enc_arena_t *arena, size_t need);

/* Encode scores[0..n) as `fmt`, back to back, into `arena` (its previous
 * content is discarded).  out[i] / out_lens[i] get each record's bytes:
 * pointers into arena->data, valid until the arena is used again or
 * freed.  The same bytes go to every sink (Kafka and Redis: one encoding
 * per event).  RS_ERR_TOOBIG if a record does not encode (a corrupt
 * record: a count out of range), *failed (may be NULL) = its index;
 * nothing is usable then.  Reentrant: any thread, one arena per thread at
 * a time.  @locality any thread */
rs_err_t rs_score_encode_batch(rs_format_t fmt, const rs_score_t *scores,
                               int n, rs_enc_arena_t *arena,
                               const void **out, size_t *out_lens,
                               int *failed);

/* Append the encoding of one score as `fmt` to `arena` after its
 * arena->len bytes (set arena->len = 0 to start a batch), growing it as
 * rs_score_encode_batch does; *len = the record's length, which starts at
 * arena->data + (arena->len before the call).  For a caller that encodes
 * each record while it is still in cache (the records stage): the bytes
 * are those of rs_score_encode_batch; take pointers only after the last
 * append (the arena may move while growing).  RS_ERR_TOOBIG if the
 * record does not encode (arena->len unchanged).  Reentrant: one arena
 * per thread at a time.  @locality any thread */
rs_err_t rs_score_encode_append(rs_format_t fmt, const rs_score_t *sc,
                                rs_enc_arena_t *arena, size_t *len);

/* ------------------------------------------------------------------- CSV */

/* A column mapping for CSV and foreign JSON lines:
 * "id=tx_id,entity=card,counterparty=merchant,time=ts,amount=amt,label=is_fraud"
 * Any other CSV column becomes a numeric field (if it parses as a number)
 * or a categorical field.  Time may be epoch s, epoch ms or
 * "YYYY-MM-DD HH:MM:SS". */
typedef struct rs_csv_map_s {
    char id[RS_NAME_MAX], type[RS_NAME_MAX], entity[RS_NAME_MAX],
        counterparty[RS_NAME_MAX], time[RS_NAME_MAX], amount[RS_NAME_MAX],
        label[RS_NAME_MAX];
} rs_csv_map_t;

/* Defaults: id=id, type=type, entity=entity_id,
 * counterparty=counterparty_id, time=event_time_ms, amount=amount,
 * label=label.  Then apply "k=v,k=v" overrides; RS_ERR_CONFIG names a bad
 * key. */
rs_err_t rs_csv_map_parse(rs_csv_map_t *map, const char *spec, char *errstr,
                          size_t errstr_size);

typedef struct rs_csv_s rs_csv_t;
/* A CSV reader bound to a header line (RFC 4180 quoting).  The header is
 * parsed once; each row is then decoded with rs_csv_decode.  Owned by the
 * caller; rs_csv_destroy(NULL) is a no-op.  Returns NULL with errstr set if
 * the header lacks a required mapped column (id, entity, time) or an
 * optional one the mapping renamed ("CSV header has no column 'amt'
 * (mapped to amount)"), or an unmapped column name does not fit
 * RS_NAME_MAX.  Columns with an empty name are ignored.  `map` is copied. */
rs_csv_t *rs_csv_new(const rs_csv_map_t *map, const char *header, size_t len,
                     char *errstr, size_t errstr_size);
void rs_csv_destroy(rs_csv_t *csv);
/* Decode one data row.  If the mapping has a label column and the row has
 * a non-empty label, *label_out (may be NULL) gets it and *has_label = 1.
 * Events without an explicit type get type "event".
 *
 * Details: a trailing "\r\n" / "\n" is trimmed; a row with a different
 * number of columns than the header is RS_ERR_INVALID ("row has 5 columns,
 * header has 7").  Unmapped columns become numeric fields when the cell is
 * a plain decimal number (optional sign, digits, '.', exponent; finite),
 * else categorical fields; empty cells are skipped.  Columns beyond
 * RS_MAX_NUMERIC numeric / RS_MAX_CATEG categorical cells of a row are
 * ignored (first columns win).  An empty amount cell means 0.  Labels are
 * numbers in [0,1] or true/false.  Uses a scratch buffer inside `csv`
 * that grows to the longest row (<= RS_MSG_MAX) and is then reused.  The
 * event is validated (rs_event_validate). */
rs_err_t rs_csv_decode(rs_csv_t *csv, const char *line, size_t len,
                       rs_event_t *ev, double *label_out, int *has_label,
                       char *errstr, size_t errstr_size);

/* Length of the first CSV record in buf[0..len), including its line end,
 * honouring RFC 4180 quotes (a quoted field may contain newlines).  Sets
 * *complete = 0 (and returns len) if the record does not end inside buf
 * -- read more and call again.  For readers that split a stream into rows
 * before rs_csv_decode. */
size_t rs_csv_record_len(const char *buf, size_t len, int *complete);

/* Decode a flat "foreign" JSON object (one line of a third-party feed)
 * through the same mapping: mapped keys fill the record (id and entity may
 * be strings or integers; time an epoch s / ms number or a string for
 * rs_time_parse; amount a number or numeric string; label a number or
 * bool), every other key becomes a numeric field (numbers, bools as 0/1)
 * or a categorical field (strings), up to the max counts (extra keys are
 * ignored); null, arrays and objects are ignored.  Type defaults to
 * "event".  Validates. */
rs_err_t rs_event_from_json_map(const rs_csv_map_t *map, const char *buf,
                                size_t len, rs_event_t *ev,
                                double *label_out, int *has_label,
                                char *errstr, size_t errstr_size);

/* ------------------------------------------------------- run to failure
 *
 * Public run-to-failure data comes as whitespace-separated text, one row
 * per machine cycle: "unit cycle setting1..S sensor1..N" (S = 3 usually;
 * no header).  rs_rtf_decode turns a row into an event: entity
 * "<units><unit>" (default prefix "unit-"), id "<units><unit>-c<cycle>",
 * type "cycle", event time = start + cycle x period, numeric fields
 * setting1..S and the kept sensorK (K = the 1-based sensor column).  In a
 * training file every unit fails at its last cycle (failures = last): the
 * caller, which sees the whole file, labels that row (eval, features).
 * The mapping is a --map "rtf:KEY=VALUE,..." with keys
 *   period   duration of one cycle (default 1h)
 *   start    event time of cycle 0 (default 2020-01-01 00:00:00 UTC)
 *   settings operating-setting columns after the cycle, 0..3 (default 3)
 *   sensors  sensor numbers kept, e.g. 2;3;4;7-9 (default all; at most
 *            RS_MAX_NUMERIC - settings columns fit an event)
 *   units    entity id prefix (default "unit-")
 *   failures last (a failure at each unit's last cycle) | none
 * No I/O, no allocation: fuzzed (tests/fuzz/fuzz_rtf.c). */
#define RS_RTF_MAX_COLS 64       /* sensor columns addressable by `sensors` */

typedef struct rs_rtf_conf_s {
    int64_t start_ms, period_ms;
    int settings;                /* 0..3                                    */
    int failures;                /* 1: last cycle of each unit is a failure */
    uint8_t keep[RS_RTF_MAX_COLS]; /* sensor k+1 kept                       */
    char prefix[24];
} rs_rtf_conf_t;

void rs_rtf_conf_init(rs_rtf_conf_t *c);
/* Parse "rtf", "rtf:KEY=VALUE,..." or "KEY=VALUE,..." (defaults first).
 * RS_ERR_CONFIG naming the key and the expected value. */
rs_err_t rs_rtf_conf_parse(rs_rtf_conf_t *c, const char *spec, char *errstr,
                           size_t errstr_size);
/* 1 if a --map spec asks for the run-to-failure reader ("rtf..."). */
static inline int rs_rtf_spec(const char *spec) {
    return spec && !strncmp(spec, "rtf", 3) && (!spec[3] || spec[3] == ':');
}
/* Decode one row line[0..len) (no NUL needed; line ends ignored).  *unit,
 * *cycle get its numbers.  RS_ERR_AGAIN for a blank line, RS_ERR_INVALID
 * with errstr naming the column ("column 7 (sensor 2): 'x' is not a
 * number"), or the event's validation error.  Extra columns beyond
 * RS_RTF_MAX_COLS sensors are ignored. */
rs_err_t rs_rtf_decode(const rs_rtf_conf_t *c, const char *line, size_t len,
                       rs_event_t *ev, int64_t *unit, int64_t *cycle,
                       char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_PROTO_H */
