/* tmerge.h -- the ordering core of a time-ordered merge of several inputs
 * (Kafka Streams' per-task record ordering with max.task.idle.ms), shared
 * by the counterparty stage's merge (scoring/cpstage_merge.c: every
 * partition of the events and labels topics) and the scoring consumer's
 * per-task merge (ingest/ingest.c: events/N with labels/N).
 *
 * The core holds no messages: the caller keeps one FIFO per input and
 * tells the core what each input's head is (its time key and when it
 * arrived), when an input has nothing, and when it is at its end (the
 * consumer reached the partition's high watermark).  rs_tmerge_next says
 * which input's head goes next, or that none may go yet:
 *  - the smallest head by (key, input index) goes -- ties to the lower
 *    index, so the order is total;
 *  - but only when every input without a head is *idle*: at its end, and
 *    (idle_wait > 0) for idle_wait since the head to take arrived, or
 *    since the input reached its end if later.  An input with no head that
 *    is not at its end is "unknown" (its next message may be older): the
 *    merge waits for it.  So with idle_wait 0 the merge waits only while
 *    an input is known to have unfetched data, and the merged order is a
 *    function of the inputs' contents whenever nothing arrives after the
 *    merge passed its input as idle (a backlog, a replay); a message that
 *    does arrive later than that may be taken out of that order and is
 *    reported by rs_tmerge_take (counted by the callers as "reordered").
 *  - That order, everything there: each input's messages in its own
 *    order, by (the running max of the input's keys up to the message,
 *    input) -- what a merge by heads gives.  A message is reordered when
 *    a head of another input that sorts after it in this order was taken
 *    before it: every message of a late batch below what went ahead, not
 *    only its first; not one that is older only than its own input's
 *    earlier messages.
 * Cost per message O(log n): heads sit in a binary min-heap; the inputs
 * without a head are a set E whose checks are redone only when E, the
 * clock or an end flag changed (in between only the next head's arrival
 * is compared with idle_wait).  Allocation: only in rs_tmerge_new.
 *
 * Input states: EMPTY (no message; in E), PENDING (has messages whose
 * head the caller has not keyed yet: rs_tmerge_pending, and every input
 * just taken from), HEAD (keyed head, in the heap).  rs_tmerge_next must
 * see no PENDING input: the caller keys (rs_tmerge_head) or empties
 * (rs_tmerge_empty) them first; a PENDING input blocks the merge.
 *
 * Threads: one owner thread per rs_tmerge_t (no locks, no globals).
 */
#ifndef RS_TMERGE_H
#define RS_TMERGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_tmerge_s rs_tmerge_t;

/* What rs_tmerge_take reports about the head it took. */
typedef struct rs_tmerge_take_s {
    int64_t key_t;         /* its time key                                */
    int reordered;         /* 1: taken after a head of another input that
                            * sorts after it by (running max key of the
                            * input, input): its input had been passed as
                            * idle (it arrived too late for the wait)     */
    int64_t behind_ms;     /* reordered: the largest key taken from
                            * another input - key_t                      */
    int64_t late_ms;       /* reordered: how late it arrived: its arrival
                            * minus the earliest arrival of the heads
                            * taken ahead of it (ordered after it, taken
                            * while the high mark advanced) -- the wait an
                            * idle_wait must exceed to have held them
                            * back for it (idle_wait >= late_ms + 1, as
                            * the clock ticks in ms; less if its input
                            * reached its end after those arrived); 0..  */
    int late_min;          /* 1: more heads were ahead of it than the
                            * merge remembers (RS_TMERGE_LATE distinct
                            * arrival times): late_ms is a lower bound    */
} rs_tmerge_take_t;

/* Arrival times the merge remembers for late_ms: the heads that advanced
 * its frontier, one per distinct arrival time (the earliest arrival of
 * the heads taken since), so at least this many ms of arrivals. */
#define RS_TMERGE_LATE 64

/* A histogram of reordered heads by the idle_wait that would have taken
 * them in order (both callers keep one, counted with rs_tmerge_late_bucket
 * and logged with rs_tmerge_late_advice): [0] 1 ms (late_ms < 1), [k]
 * 2^k ms (late_ms < 2^k), the last bucket: more, or not known (late_min). */
#define RS_TMERGE_LATE_BUCKETS 16

/* A merge of n >= 1 inputs, every one EMPTY and not at its end.
 * idle_wait_ms >= 0.  Never NULL (aborts on out of memory, as rs_calloc).
 * The owner frees it with rs_tmerge_destroy (NULL is a no-op). @locality any thread (a new handle) */
rs_tmerge_t *rs_tmerge_new(int n, int64_t idle_wait_ms);
void rs_tmerge_destroy(rs_tmerge_t *m);

/* Input i (EMPTY or PENDING) has a head: time key key_t, arrived at
 * at_ms (the caller's idle_wait clock). @locality the owner thread */
void rs_tmerge_head(rs_tmerge_t *m, int i, int64_t key_t, int64_t at_ms);
/* Input i (EMPTY) has messages whose head is not keyed yet: PENDING.  A
 * no-op for an input that is PENDING or has a head. @locality the owner thread */
void rs_tmerge_pending(rs_tmerge_t *m, int i);
/* Input i (PENDING) has no message left: EMPTY. @locality the owner thread */
void rs_tmerge_empty(rs_tmerge_t *m, int i);
/* Input i is (at_end 1) or is no longer (0) at its end: no message after
 * the last one given; since now_ms if it was not at its end already. @locality the owner thread */
void rs_tmerge_eof(rs_tmerge_t *m, int i, int at_end, int64_t now_ms);

/* The input whose head goes next at clock now_ms, or -1: nothing to take
 * (no head), or blocked -- rs_tmerge_blocked then names the lowest input
 * that holds the merge back.  Marks the inputs it passes as idle. @locality the owner thread */
int rs_tmerge_next(rs_tmerge_t *m, int64_t now_ms);
/* Take the head of input i (the one rs_tmerge_next returned): it becomes
 * PENDING (key its next head, or empty it).  tk may be NULL. @locality the owner thread */
void rs_tmerge_take(rs_tmerge_t *m, int i, rs_tmerge_take_t *tk);

/* The histogram bucket of a reordered take (RS_TMERGE_LATE_BUCKETS): the
 * smallest 2^k ms above its late_ms, or the last one.  @locality any thread */
int rs_tmerge_late_bucket(const rs_tmerge_take_t *tk);
/* What wait would have taken the reordered heads counted in buckets `bk`
 * ([RS_TMERGE_LATE_BUCKETS], a histogram or a difference of two, n in
 * all) in order, for the log: the waits that take 50, 90, 99 % and all of
 * them, named by the setting `key` ("cpstage.idle_wait 4ms: 62.5 %, 8ms:
 * 93.0 %, 16ms: all"; percentages rounded down), then how many were later
 * than the last bucket or by more than the merge remembers, into buf
 * (size bytes, truncated); "" if n is 0.  An estimate from one run's
 * arrivals: a wait changes how the caller's reads batch.  @locality any thread */
void rs_tmerge_late_advice(const char *key, const uint64_t *bk, uint64_t n,
                           char *buf, size_t size);

/* The log of a merge's reorders, kept by its caller: one warning at the
 * first reorder, then a summary at most every `every_us`, each of what
 * came since the last line (the stage's and the task merge's lines share
 * this bookkeeping; their wording is their own). */
typedef struct rs_tmerge_log_s {
    uint64_t logged;                               /* reorders at the last line */
    uint64_t late_logged[RS_TMERGE_LATE_BUCKETS];  /* ... their buckets        */
    int64_t next_us;                               /* no summary before        */
    int warned;                                    /* the first warning went   */
} rs_tmerge_log_t;

/* What to log now, at clock now_us, for `reordered` reorders in all with
 * the lateness buckets `late`: 0 nothing; 1 the first warning; 2 a
 * summary of the *n since the last line over *secs seconds, with adv (size
 * bytes) the waits that would have merged them in order
 * (rs_tmerge_late_advice with `key`).  On 1 and 2 the log moves on to
 * now.  @locality the caller's thread (it owns lg) */
int rs_tmerge_log_step(rs_tmerge_log_t *lg, const uint64_t *late,
                       uint64_t reordered, int64_t now_us, int64_t every_us,
                       const char *key, char *adv, size_t size, uint64_t *n,
                       int64_t *secs);

/* The lowest input that blocked the last rs_tmerge_next, -1 if none. @locality the owner thread */
int rs_tmerge_blocked(const rs_tmerge_t *m);
/* 1 once input i was found at its end and empty by rs_tmerge_next (it
 * has been merged to its end at least once). @locality the owner thread */
int rs_tmerge_done_once(const rs_tmerge_t *m, int i);
/* Time key of the last head taken (INT64_MIN before any). @locality the owner thread */
int64_t rs_tmerge_frontier(const rs_tmerge_t *m);
/* 1 if input i has a keyed head. @locality the owner thread */
int rs_tmerge_has_head(const rs_tmerge_t *m, int i);

#ifdef __cplusplus
}
#endif

#endif /* RS_TMERGE_H */
