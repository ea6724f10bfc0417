/* learnlog.h -- the learning log: what the model needs to learn from an
 * event, kept on disk from the moment it is scored until its label can no
 * longer arrive.
 *
 * Design note
 * -----------
 * Labels arrive days to months after their events (chargebacks 30-90
 * days).  Instead of holding every scored event in RAM until then, the
 * scorer appends one compact, fixed-size LEARNING RECORD per scored event
 * to a log of its input partition: the event's model inputs and a
 * reference to the entity's previous record (the history is rebuilt by
 * following those references, not copied), never activations.  A label is
 * joined to its record through an on-disk index by event id; events that
 * never get a label are learned as negatives when they MATURE (event time
 * older than watermark - label horizon); a positive that arrives after its
 * event matured is still learned (the learner corrects the negative).  The
 * record's state byte says which of these happened, so nothing is learned
 * twice, also across restarts.
 *
 *   <dir>/<20-digit first position>.log   header page + capacity records
 *   <dir>/<20-digit first position>.idx   header page + hash table of
 *                                          (event id hash, record + 1)
 *
 * A log is a sequence of SEGMENTS (a pair of files, preallocated with
 * fallocate so a full disk is an error at the roll, never a SIGBUS in the
 * middle of a write) addressed by a position that only grows: record
 * `pos` lives in the segment whose range holds it.  RAM use does not
 * depend on the horizon: segments are mmap'd (page cache), per segment
 * only a small descriptor is kept.  Whole segments are deleted once every
 * record in them is resolved and older than the retention.  Records are
 * little-endian (every supported host); each carries a checksum, so a torn
 * write after a crash is detected and the log ends before it.
 * `dir` empty: an in-memory log with the same layout (tests, tools).
 *
 * Records start with rs_lrec_hdr_t (below); the model writes the body
 * after it (model.h rs_model_lrec_size).  The log itself only reads the
 * header: event id hash (index), event time (maturity, retention), state.
 *
 * Threads.  One WRITER thread appends (rs_learnlog_append, _end, _rewind,
 * _sync) and one RESOLVER thread reads and resolves (rs_learnlog_index,
 * _find, _rec, _set_state, _next_mature, _truncate); they may be the same
 * thread.  The writer publishes the end position with release semantics
 * and the resolver reads only below it; the segment list is guarded by a
 * mutex taken only when a segment is added or removed, and by the resolver
 * to look a position up (never on the append path).  rs_learnlog_stats may
 * be called from any thread.
 *
 * New segments are made off the writer: the resolver makes the next one
 * ahead (rs_learnlog_prepare, once the segment being written is half
 * full) and hands it over through the same mutex; at the roll the writer
 * only renames its files into place, or makes the segment itself if none
 * is ready.  A new log (no segment on disk) opens without one: its FIRST
 * segment is made the same way, by the resolver's first prepare if that
 * comes before the first append (the service opens a partition's log
 * when the partition is assigned and hands it to the trainer at once),
 * else by the first append.  A segment's files carry their names only
 * from the roll on, so a crash anywhere leaves what open reads back as
 * the log it was (learnlog.c "New segments").
 */
#ifndef RS_LEARNLOG_H
#define RS_LEARNLOG_H

#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The first 48 bytes of every learning record (little-endian). */
typedef struct rs_lrec_hdr_s {
    uint64_t id;          /* rs_hash_str(event id)                         */
    uint64_t entity;      /* rs_hash_str(entity id)                        */
    int64_t t;            /* event time, ms                                */
    uint64_t prev;        /* the entity's previous record: RS_LPOS + 1, or
                           * 0 if the scorer had no history for it         */
    float score;          /* as scored                                     */
    uint32_t sum;         /* checksum of the record, computed with sum = 0
                           * and state = 0 (state changes after the write) */
    uint8_t state;        /* RS_LREC_* (the resolver writes it)            */
    uint8_t kind;         /* model kind that wrote it                      */
    uint16_t hist;        /* history events the scorer attended over       */
    uint32_t pad;
} rs_lrec_hdr_t;

#define RS_LREC_HDR sizeof(rs_lrec_hdr_t)

/* state: 0 = pending (waits for a label or maturity) */
#define RS_LREC_LEARNED  0x01u /* learned once (label or maturity)          */
#define RS_LREC_POSITIVE 0x02u /* ... as a positive                         */
#define RS_LREC_MATURED  0x04u /* ... as a maturity negative                */
#define RS_LREC_LABELED  0x08u /* an explicit label was joined              */
#define RS_LREC_CORRECTED 0x10u /* a positive after a maturity negative     */
#define RS_LREC_RUL      0x20u /* its remaining useful life was learned, or
                                * is censored for good (rul.h)            */

/* A position in the logs of one process: input partition and record
 * number.  2^48 records per partition. */
#define RS_LPOS(part, pos) (((uint64_t)(uint32_t)(part) << 48) | (uint64_t)(pos))
#define RS_LPOS_PART(lp) ((int32_t)((lp) >> 48))
#define RS_LPOS_POS(lp) ((lp) & ((UINT64_C(1) << 48) - 1))

/* Checksum a record would carry (its sum and state read as 0). */
uint32_t rs_lrec_sum(const void *rec, size_t size);
/* Seal a record written by a model: sets hdr.sum (state must be 0). */
void rs_lrec_seal(void *rec, size_t size);

/* What a log holds; a log written for other metadata is refused at open
 * (a model of another kind, architecture or feature layout cannot learn
 * from it). */
typedef struct rs_learnlog_meta_s {
    uint32_t rec_size;    /* bytes per record, multiple of 8, >= 48       */
    uint32_t kind;        /* rs_model_kind_t                              */
    uint32_t arch;        /* architecture hash of the model               */
    uint32_t names_hash;  /* feature names                                */
    uint32_t dim;
} rs_learnlog_meta_t;

typedef struct rs_learnlog_s rs_learnlog_t;

/* Open (creating it and its parents if missing) the log of one partition
 * in `dir` ("" or NULL: in memory).  segment_bytes: target file size of a
 * segment (>= 1 MiB; the record capacity follows from it).  A new log
 * has no segment yet (no file is made here: see Threads).  An existing
 * log is opened at its end: the records after the last one indexed are
 * checked (checksum) and the log ends before the first bad one (a torn
 * write); the open segment's index is rebuilt.  Errors: RS_ERR_CONFIG (the
 * log holds records of other metadata: errstr names the difference and
 * the directory), RS_ERR_CORRUPT (a damaged header, a gap between
 * segments), RS_ERR_IO.  @locality any thread (then: see Threads) */
rs_learnlog_t *rs_learnlog_open(const char *dir, int32_t partition,
                                const rs_learnlog_meta_t *meta,
                                int64_t segment_bytes, rs_err_t *err_out,
                                char *errstr, size_t errstr_size);
/* Unmap and close (files stay).  NULL is a no-op.  No other thread may use
 * the log any more. */
void rs_learnlog_close(rs_learnlog_t *lg);

int32_t rs_learnlog_partition(const rs_learnlog_t *lg);
const char *rs_learnlog_dir(const rs_learnlog_t *lg); /* "" in memory */
/* The metadata the log was opened with.  @locality any thread */
void rs_learnlog_meta(const rs_learnlog_t *lg, rs_learnlog_meta_t *meta);

/* ----------------------------------------------------------- writer */

/* Position the next appended record gets.  @locality the writer */
uint64_t rs_learnlog_end(const rs_learnlog_t *lg);
/* Append n sealed records (n * rec_size bytes, copied).  Begins a new
 * segment when the current one is full, or the first one of a new log.
 * RS_ERR_IO with errstr if a new
 * segment cannot be created (disk full: nothing is appended, nothing is
 * dropped: the caller must stop or retry).  No allocation but at a roll.
 * @locality the writer */
rs_err_t rs_learnlog_append(rs_learnlog_t *lg, const void *recs, int n,
                            char *errstr, size_t errstr_size);
/* Forget every record at position >= pos (a restart from a checkpoint
 * taken at pos: the input after it is read and logged again).  pos below
 * the first kept record is RS_ERR_INVALID.  Only while no resolver reads
 * (before the log is handed to one).  @locality the writer */
rs_err_t rs_learnlog_rewind(rs_learnlog_t *lg, uint64_t pos, char *errstr,
                            size_t errstr_size);
/* Write the records appended so far (and the states the resolver set) to
 * disk (msync MS_SYNC), e.g. before a checkpoint that names the end
 * position is committed.  No-op in memory.  @locality any thread */
rs_err_t rs_learnlog_sync(rs_learnlog_t *lg, char *errstr,
                          size_t errstr_size);

/* --------------------------------------------------------- resolver */

/* Index the records appended since the last call (id hash -> position);
 * returns how many.  Call before rs_learnlog_find so that it sees them.
 * @locality the resolver */
uint64_t rs_learnlog_index(rs_learnlog_t *lg);
/* Make the segment that follows the one being written ahead of the
 * writer (the spare, taken at the roll: see Threads), once that one is
 * half full, or at once the first segment of a new log; otherwise, or if
 * a spare is ready, nothing (cheap: a load, and the mutex once per half
 * segment).  Call it as soon as the log is handed over (the first
 * segment), then regularly, e.g. with
 * rs_learnlog_index.  RS_OK, or RS_ERR_IO / RS_ERR_NOMEM with errstr if
 * the segment cannot be made (the log is unchanged; the writer tries
 * again at the roll and reports it there).  @locality the resolver */
rs_err_t rs_learnlog_prepare(rs_learnlog_t *lg, char *errstr,
                             size_t errstr_size);
/* Records indexed so far (the end position the last index reached).
 * @locality the resolver */
uint64_t rs_learnlog_indexed(const rs_learnlog_t *lg);
/* Position of the record of event id hash `id` among the indexed ones.
 * t_hint (0 = unknown): the event's time if the label carries it -- then
 * only the segments around it are searched first; otherwise segments are
 * searched newest first.  RS_ERR_NOTFOUND if no kept record has that id
 * (never logged, or deleted by retention).  If an id was logged twice, the
 * first record is found.  @locality the resolver */
rs_err_t rs_learnlog_find(rs_learnlog_t *lg, uint64_t id, int64_t t_hint,
                          uint64_t *pos);
/* Pointer to record `pos` (rec_size bytes, mapped), or NULL if it is not
 * kept (deleted, or not yet appended).  Valid until rs_learnlog_truncate or
 * close; write only its state byte (rs_learnlog_set_state).
 * @locality the resolver */
const void *rs_learnlog_rec(rs_learnlog_t *lg, uint64_t pos);
void rs_learnlog_set_state(rs_learnlog_t *lg, uint64_t pos, uint8_t state);
/* The oldest record not yet learned (no RS_LREC_LEARNED) with event time
 * < cutoff_ms, from
 * the maturity cursor on: RS_OK and *pos, or RS_ERR_NOTFOUND when the
 * cursor reaches a pending record at or after the cutoff (records are
 * roughly in event-time order: a later record that is older waits behind
 * it, never learned early) or the end.  The cursor moves past resolved
 * records; the caller resolves *pos before the next call (or the same
 * record comes back).  @locality the resolver */
rs_err_t rs_learnlog_next_mature(rs_learnlog_t *lg, int64_t cutoff_ms,
                                 uint64_t *pos);
/* Delete the segments that lie wholly behind the maturity cursor and whose
 * newest event is older than keep_after_ms (history references into them
 * then end there).  Never the segment being written.  Returns how many
 * segments were deleted.  @locality the resolver */
int rs_learnlog_truncate(rs_learnlog_t *lg, int64_t keep_after_ms);

typedef struct rs_learnlog_stats_s {
    uint64_t first;        /* oldest kept position                         */
    uint64_t end;          /* next position                                */
    uint64_t cursor;       /* maturity cursor                              */
    uint64_t indexed;      /* records indexed                              */
    uint64_t segments;     /* segments kept                                */
    uint64_t bytes;        /* bytes of the kept files (allocated size)     */
    uint64_t rec_size;
    uint64_t finds, probes;/* lookups, segment indexes probed for them     */
    uint64_t deleted;      /* segments deleted by retention                */
    uint64_t rolls;        /* segments begun by the writer after the first */
    uint64_t spares;       /* ... of them made ahead (rs_learnlog_prepare);
                            * the others the writer made at the roll      */
    uint64_t first_ready;  /* 1 if the first segment of a new log was
                            * made ahead (0: by the writer, or not new)   */
    uint64_t made;         /* segments the writer made itself (none was
                            * ready: a new log's first, or a roll)        */
    uint64_t prepared;     /* segments made ahead (a spare not taken is
                            * dropped: a rewind, close)                   */
    uint64_t dropped;      /* ... of them never begun (a rewind, close, or
                            * the writer made its own meanwhile)          */
    uint64_t prep_errors;  /* spares that could not be made (a full disk:
                            * the writer tries again at the roll)        */
    int64_t oldest_t;      /* oldest event time kept (0 if empty)          */
} rs_learnlog_stats_t;

/* @locality any thread (a consistent-enough snapshot of counters) */
void rs_learnlog_stats(const rs_learnlog_t *lg, rs_learnlog_stats_t *st);

/* The same events summed over every log of the process since it started
 * (closed logs included: counters only grow, but `segments`), for the
 * service's metrics. */
typedef struct rs_learnlog_totals_s {
    uint64_t begun_made;   /* segments begun that the writer made itself
                            * (no spare ready; the writer is the scoring
                            * thread in the service)                     */
    uint64_t begun_ready;  /* segments begun ready-made (renamed only)    */
    uint64_t rolls;        /* of all begun: a full segment's successor     */
    uint64_t prepared;     /* segments made ahead by a resolver            */
    uint64_t dropped;      /* ... never begun (rewind, close, too late)    */
    uint64_t prep_errors;  /* segments that could not be made ahead        */
    uint64_t deleted;      /* segments deleted by retention                */
    uint64_t segments;     /* segments kept by the open logs now           */
} rs_learnlog_totals_t;

/* @locality any thread (atomic counters; not a consistent snapshot) */
void rs_learnlog_totals(rs_learnlog_totals_t *t);

/* Bytes a segment of segment_bytes holds records for (its capacity in
 * records times rec_size, plus its index) -- for the start-up check of
 * the disk a configuration needs.  Pure. */
uint64_t rs_learnlog_bytes_per_record(uint32_t rec_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_LEARNLOG_H */
