/* sink_redis_writer.c -- the Redis sink's async path (design note in
 * sink_redis.c): the writer thread and the owner's enqueue into the ring. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "scoring/sink_redis_int.h"

/* ---------------------------------------------------------- async: writer */

/* Writer-thread state (allocated and used by the writer thread only). */
typedef struct rs_redis_writer_s {
    redisContext *ctx;
    int outage;               /* in an outage (logged its start)          */
    int64_t outage_since_us;
    uint64_t outage_failures;
    int backoff_ms;           /* next backoff; 0 = none yet               */
    uint32_t gen;             /* ctx's generation (sink->wgen)            */
    int connected;            /* a connection was made before             */
    int64_t reject_log_us;    /* last rejected-command log                */
    uint64_t reject_unlogged; /* rejected since that log                  */
    struct iovec iov[2 * RS_REDIS_PIPE_ENTRIES]; /* a round's commands   */
    struct {
        uint64_t end;         /* ring position after the entry            */
        uint32_t nrep;        /* replies to read: ncmds [+ tail_cmds]     */
        rs_redis_entry_t h;
    } pipe[RS_REDIS_PIPE_ENTRIES];
} rs_redis_writer_t;

/* Set done = queued ? head_seq - 1 : last_seq if that is higher, and wake
 * the waiters.  Caller holds the lock. */
static void rs_redis_done_locked(rs_sink_redis_t *sink) {
    uint64_t d = sink->queued ? sink->head_seq - 1 : sink->last_seq;
    if (d > atomic_load_explicit(&sink->done, memory_order_relaxed)) {
        atomic_store_explicit(&sink->done, d, memory_order_release);
        pthread_cond_broadcast(&sink->done_cv);
    }
}

static struct timespec rs_redis_abstime(int64_t mono_us) {
    struct timespec ts = {.tv_sec = mono_us / 1000000,
                          .tv_nsec = (long)(mono_us % 1000000) * 1000};
    return ts;
}

/* A failed attempt: count it, log the start of an outage once, drop the
 * context.  The caller backs off. */
static void rs_redis_w_fail(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                            const char *why) {
    /* Messages from rs_redis_open / rs_redis_cmd_ok start with
     * "redis <endpoint>: ", which ours already says. */
    size_t el = strlen(sink->endpoint);
    if (!strncmp(why, "redis ", 6) && !strncmp(why + 6, sink->endpoint, el) &&
        !strncmp(why + 6 + el, ": ", 2))
        why += 6 + el + 2;
    if (w->ctx) redisFree(w->ctx);
    w->ctx = NULL;
    RS_INC(sink->c.write_errors);
    atomic_store_explicit(&sink->healthy, 0, memory_order_relaxed);
    w->backoff_ms = w->backoff_ms ? RS_MIN(w->backoff_ms * 2,
                                           RS_REDIS_BACKOFF_MAX_MS)
                                  : RS_REDIS_BACKOFF_MIN_MS;
    w->outage_failures++;
    if (w->outage) {
        rs_debug("sink", "redis %s: still down: %s", sink->endpoint, why);
        return;
    }
    w->outage = 1;
    w->outage_since_us = rs_clock_mono_us();
    w->outage_failures = 1;
    RS_INC(sink->c.outages);
    rs_warn("sink", "redis %s: outage: %s; buffering writes (%" PRIu64
            " batch(es), %" PRIu64 " bytes queued, buffer %" PRIu64
            " bytes), retrying every %d ms .. %d ms", sink->endpoint, why,
            RS_LOAD(sink->c.queued_batches), RS_LOAD(sink->c.buffer_bytes),
            sink->cap, RS_REDIS_BACKOFF_MIN_MS, RS_REDIS_BACKOFF_MAX_MS);
}

/* A successful attempt: end the outage (logged once). */
static void rs_redis_w_ok(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    w->backoff_ms = 0;
    atomic_store_explicit(&sink->healthy, 1, memory_order_relaxed);
    if (!w->outage) return;
    w->outage = 0;
    rs_info("sink", "redis %s: outage over after %.1f s (%" PRIu64
            " failed attempt(s)); writing %" PRIu64 " queued batch(es)",
            sink->endpoint,
            (double)(rs_clock_mono_us() - w->outage_since_us) / 1e6,
            w->outage_failures, RS_LOAD(sink->c.queued_batches));
}

static int rs_redis_w_connect(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    char errstr[512];
    if (w->ctx) return 0;
    if (rs_redis_open(sink, &w->ctx, errstr, sizeof(errstr)) == RS_OK) {
        /* A new generation before anything is written on it: entries
         * built for an older one send their expiry tail.  Not for the
         * first connection: the entries built before it skipped only
         * refreshes planned by entries before them (the table starts
         * empty), which it writes first, in order. */
        w->gen = w->connected
                     ? atomic_fetch_add_explicit(&sink->wgen, 1,
                                                 memory_order_acq_rel) + 1
                     : atomic_load_explicit(&sink->wgen,
                                            memory_order_acquire);
        w->connected = 1;
        return 0;
    }
    rs_redis_w_fail(sink, w, errstr);
    return -1;
}

/* 1 when entry h must send its expiry tail: it was built for another
 * connection (the server may have lost the indexes whose refresh the
 * owner skipped, and a ZADD would recreate them without an expiry), or it
 * waited in the ring more than half the refresh period (the skip assumed
 * it would run within one period of the last refresh). */
static int rs_redis_tail_needed(const rs_sink_redis_t *sink,
                                const rs_redis_writer_t *w,
                                const rs_redis_entry_t *h, int64_t now_us) {
    return h->tail_cmds &&
           (h->gen != w->gen ||
            now_us - h->built_us > sink->ix_period_ms * 500);
}

/* Sleep the backoff; returns early only when the drain deadline passes. */
static void rs_redis_w_backoff(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    int64_t until = rs_clock_mono_us() + (int64_t)w->backoff_ms * 1000;
    pthread_mutex_lock(&sink->lock);
    for (;;) {
        int64_t now = rs_clock_mono_us(), end = until;
        if (sink->stop && sink->stop_deadline_us < end)
            end = sink->stop_deadline_us;
        if (now >= end) break;
        struct timespec ts = rs_redis_abstime(end);
        pthread_cond_timedwait(&sink->work_cv, &sink->lock, &ts);
    }
    pthread_mutex_unlock(&sink->lock);
}

/* Error replies that mean "not now" (the server cannot take writes at the
 * moment) rather than "never" for this command. */
static int rs_redis_reply_retriable(const char *msg) {
    static const char *const permanent[] = {"WRONGTYPE", "ERR ", "EXECABORT"};
    if (!strncmp(msg, "ERR max number of clients", 25)) return 1;
    for (size_t i = 0; i < RS_ARRAY_LEN(permanent); i++)
        if (!strncmp(msg, permanent[i], strlen(permanent[i]))) return 0;
    return 1;
}

static void rs_redis_w_rejected(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                                const rs_redis_entry_t *h, const char *msg) {
    int64_t now = rs_clock_mono_us();
    RS_INC(sink->c.rejected);
    if (w->reject_log_us &&
        now - w->reject_log_us < (int64_t)RS_REDIS_REJECT_LOG_MS * 1000) {
        w->reject_unlogged++;
        return;
    }
    if (w->reject_unlogged)
        rs_error("sink", "redis %s: command of batch %" PRIu64 " refused: "
                 "%s (not retried; %" PRIu64 " more refused since the last "
                 "report)", sink->endpoint, h->seq, msg, w->reject_unlogged);
    else
        rs_error("sink", "redis %s: command of batch %" PRIu64 " refused: "
                 "%s (not retried)", sink->endpoint, h->seq, msg);
    w->reject_log_us = now;
    w->reject_unlogged = 0;
}

/* Entry pipe[i] is written: it leaves the ring. */
static void rs_redis_w_complete(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                                int i) {
    const rs_redis_entry_t *h = &w->pipe[i].h;
    RS_ADD(sink->c.written, h->nscores);
    RS_ADD(sink->c.inputs, h->ninputs);
    pthread_mutex_lock(&sink->lock);
    sink->head = w->pipe[i].end;
    sink->queued--;
    if (sink->queued) {
        rs_redis_entry_t next;
        rs_ring_copy_out(sink->ring, sink->cap, sink->head, &next,
                         sizeof(next));
        sink->head_seq = next.seq;
    }
    atomic_store_explicit(&sink->c.buffer_bytes, sink->tail - sink->head,
                          memory_order_relaxed);
    atomic_store_explicit(&sink->c.queued_batches, sink->queued,
                          memory_order_relaxed);
    rs_redis_done_locked(sink);
    pthread_mutex_unlock(&sink->lock);
}

/* Send w->iov[0..niov) on the connection, all of it.  The commands go
 * from the ring to the socket: through hiredis (redisAppendFormattedCommand)
 * they were copied into its output buffer first, grown from empty every
 * round.  hiredis's buffer is empty here (the writer appends nothing) and
 * its reads that follow are unchanged.  -1 after a failed attempt. */
static int rs_redis_w_send(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                           int niov) {
    char why[300];
    struct iovec *iov = w->iov;
    while (niov > 0) {
        ssize_t m = writev(w->ctx->fd, iov, RS_MIN(niov, IOV_MAX));
        if (m < 0) {
            if (errno == EINTR) continue;
            snprintf(why, sizeof(why), "write: %s",
                     errno == EAGAIN || errno == EWOULDBLOCK
                         ? "timeout" : strerror(errno));
            rs_redis_w_fail(sink, w, why);
            return -1;
        }
        while (niov > 0 && (size_t)m >= iov->iov_len) {
            m -= (ssize_t)iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (char *)iov->iov_base + m;
            iov->iov_len -= (size_t)m;
        }
    }
    return 0;
}

/* Write the entries in [head, tail): pipelined rounds of up to
 * RS_REDIS_PIPE_ENTRIES.  Returns 0 when all are written, -1 after a
 * failed attempt (the entries not written stay queued). */
static int rs_redis_w_flush(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                            uint64_t head, uint64_t tail) {
    char why[512];
    while (head < tail) {
        if (rs_redis_w_connect(sink, w)) return -1;
        int k = 0, niov = 0;
        uint64_t pos = head, bytes = 0;
        const int64_t now_us = rs_clock_mono_us();
        while (pos < tail && k < RS_REDIS_PIPE_ENTRIES &&
               (k == 0 || bytes < RS_REDIS_PIPE_BYTES)) {
            rs_redis_entry_t *h = &w->pipe[k].h;
            rs_ring_copy_out(sink->ring, sink->cap, pos, h, sizeof(*h));
            int send_tail = rs_redis_tail_needed(sink, w, h, now_us);
            uint64_t p = pos + sizeof(*h), off = p % sink->cap,
                     len = h->bytes - (send_tail ? 0 : h->tail_bytes);
            size_t first = (size_t)RS_MIN(len, sink->cap - off);
            w->pipe[k].nrep = h->ncmds + (send_tail ? h->tail_cmds : 0);
            w->iov[niov++] = (struct iovec){sink->ring + off, first};
            if (len > first)
                w->iov[niov++] =
                    (struct iovec){sink->ring, (size_t)len - first};
            pos = p + h->bytes;
            w->pipe[k].end = pos;
            bytes += h->bytes;
            k++;
        }
        if (rs_redis_w_send(sink, w, niov)) return -1;
        RS_INC(sink->c.flushes);
        for (int i = 0; i < k; i++) {
            for (uint32_t c = 0; c < w->pipe[i].nrep; c++) {
                void *rv = NULL;
                if (redisGetReply(w->ctx, &rv) != REDIS_OK || !rv) {
                    snprintf(why, sizeof(why), "write: %s",
                             w->ctx->errstr[0] ? w->ctx->errstr
                                               : "connection lost");
                    rs_redis_w_fail(sink, w, why);
                    return -1;
                }
                redisReply *r = rv;
                if (r->type == REDIS_REPLY_ERROR) {
                    if (rs_redis_reply_retriable(r->str)) {
                        /* Drop the connection (the rest of the replies
                         * with it) and write this entry again later. */
                        snprintf(why, sizeof(why), "error reply: %.400s",
                                 r->str);
                        freeReplyObject(r);
                        rs_redis_w_fail(sink, w, why);
                        return -1;
                    }
                    rs_redis_w_rejected(sink, w, &w->pipe[i].h, r->str);
                }
                freeReplyObject(r);
            }
            rs_redis_w_ok(sink, w);
            rs_redis_w_complete(sink, w, i);
        }
        head = w->pipe[k - 1].end;
    }
    return 0;
}

/* Nothing to write for RS_REDIS_IDLE_PING_MS: PING, so that healthy (and
 * the outage log) follow Redis while the stream is quiet. */
static int rs_redis_w_probe(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    char errstr[512];
    if (rs_redis_w_connect(sink, w)) return -1;
    if (rs_redis_cmd_ok(sink, w->ctx, 1, (const char *[]){"PING"}, "PING",
                        errstr, sizeof(errstr)) != RS_OK) {
        rs_redis_w_fail(sink, w, errstr);
        return -1;
    }
    rs_redis_w_ok(sink, w);
    return 0;
}

/* redis.flush_delay: with entries queued, wait until the oldest was
 * queued flush_delay ago, RS_REDIS_HOLD_BYTES are queued, someone waits for
 * them (rs_sink_redis_wait) or the sink stops: a slow stream's batches
 * then share a round trip, and the writer and Redis wake once for them.
 * Caller holds the lock; returns with it held. */
static void rs_redis_w_hold(rs_sink_redis_t *sink) {
    if (sink->conf.flush_delay_ms <= 0 || sink->head == sink->tail) return;
    rs_redis_entry_t h;
    rs_ring_copy_out(sink->ring, sink->cap, sink->head, &h, sizeof(h));
    const int64_t until = h.built_us + sink->conf.flush_delay_ms * 1000;
    struct timespec ts = rs_redis_abstime(until);
    sink->wstate = RS_REDIS_W_HOLD;
    while (!sink->stop && !sink->flush_now &&
           sink->tail - sink->head < RS_REDIS_HOLD_BYTES &&
           rs_clock_mono_us() < until)
        pthread_cond_timedwait(&sink->work_cv, &sink->lock, &ts);
}

static void *rs_redis_writer_main(void *arg) {
    rs_sink_redis_t *sink = arg;
    pthread_setname_np(pthread_self(), "rs-redis"); /* top, perf, idle_cpu.py */
    rs_redis_writer_t *w = rs_calloc(1, sizeof(*w));
    for (;;) {
        uint64_t head, tail;
        int stop, idle = 0;
        int64_t deadline;
        pthread_mutex_lock(&sink->lock);
        sink->wstate = RS_REDIS_W_IDLE;
        while (sink->head == sink->tail && !sink->stop) {
            struct timespec ts = rs_redis_abstime(
                rs_clock_mono_us() + RS_REDIS_IDLE_PING_MS * 1000);
            if (pthread_cond_timedwait(&sink->work_cv, &sink->lock, &ts) ==
                    ETIMEDOUT &&
                sink->head == sink->tail) {
                idle = 1;
                break;
            }
        }
        if (!idle) rs_redis_w_hold(sink);
        sink->wstate = RS_REDIS_W_BUSY;
        sink->flush_now = 0;
        head = sink->head;
        tail = sink->tail;
        stop = sink->stop;
        deadline = sink->stop_deadline_us;
        pthread_mutex_unlock(&sink->lock);

        if (stop && (head == tail || rs_clock_mono_us() >= deadline)) break;
        if (idle) {
            if (rs_redis_w_probe(sink, w)) rs_redis_w_backoff(sink, w);
            continue;
        }
        if (rs_redis_w_flush(sink, w, head, tail)) rs_redis_w_backoff(sink, w);
    }
    pthread_mutex_lock(&sink->lock);
    if (sink->queued)
        rs_error("sink", "redis %s: stopping with %" PRIu64 " batch(es) (%"
                 PRIu64 " bytes, batches %" PRIu64 "..%" PRIu64 ") not "
                 "written: their input offsets were not stored",
                 sink->endpoint, sink->queued, sink->tail - sink->head,
                 sink->head_seq, sink->last_seq);
    pthread_mutex_unlock(&sink->lock);
    if (w->ctx) redisFree(w->ctx);
    rs_free(w);
    return NULL;
}

rs_err_t rs_redis_writer_start(rs_sink_redis_t *sink) {
    /* lazily zeroed and prefaulted in the background (rs_zero_lazy): a
     * plain malloc'd ring faulted a fresh page every few KB written until
     * it had wrapped once.  Its size was checked against memory at start
     * (rs_aligned_calloc aborts only where malloc would have failed). */
    sink->ring = rs_aligned_calloc(1, (size_t)sink->cap);
    int rc = pthread_create(&sink->thread, NULL, rs_redis_writer_main, sink);
    if (rc) {
        rs_error("sink", "redis: cannot start the writer thread: %s",
                 strerror(rc));
        rs_free(sink->ring);
        sink->ring = NULL;
        return RS_ERR_NOMEM;
    }
    sink->started = 1;
    rs_info("sink", "redis %s: writer thread started (buffer %" PRIu64
            " bytes)", sink->endpoint, sink->cap);
    return RS_OK;
}

rs_err_t rs_sink_redis_start(rs_sink_redis_t *sink) {
    return sink->started ? RS_OK : rs_redis_writer_start(sink);
}

void rs_redis_writer_stop(rs_sink_redis_t *sink) {
    if (!sink->started) return;
    pthread_mutex_lock(&sink->lock);
    sink->stop = 1;
    sink->stop_deadline_us = rs_clock_mono_us() + RS_REDIS_DRAIN_MS * 1000LL;
    pthread_cond_broadcast(&sink->work_cv);
    pthread_mutex_unlock(&sink->lock);
    pthread_join(sink->thread, NULL);
    sink->started = 0;
}

/* ---------------------------------------------------------- async: owner */

rs_err_t rs_sink_redis_enqueue(rs_sink_redis_t *sink, const rs_score_t *scores,
                               int n, const void *const *logs,
                               const size_t *log_lens, uint64_t seq) {
    if (n > 0 && scores && rs_redis_encode(sink, scores, n) != RS_OK) {
        rs_error("sink", "redis: batch %" PRIu64 " not queued", seq);
        return RS_ERR_TOOBIG;
    }
    return rs_sink_redis_enqueue_json(sink, scores, n,
                                      (const char *const *)sink->enc_ptr,
                                      sink->enc_len, logs, log_lens, seq);
}

rs_err_t rs_sink_redis_enqueue_json(rs_sink_redis_t *sink,
                                    const rs_score_t *scores, int n,
                                    const char *const *json,
                                    const size_t *json_lens,
                                    const void *const *logs,
                                    const size_t *log_lens, uint64_t seq) {
    return rs_sink_redis_enqueue_recs(sink, scores, n, json, json_lens, NULL,
                                      NULL, logs, log_lens, seq);
}

rs_err_t rs_sink_redis_enqueue_recs(rs_sink_redis_t *sink,
                                    const rs_score_t *scores, int n,
                                    const char *const *json,
                                    const size_t *json_lens,
                                    const void *const *recs,
                                    const size_t *rec_lens,
                                    const void *const *logs,
                                    const size_t *log_lens, uint64_t seq) {
    if (seq == 0 || n < 0 || (n > 0 && (!scores || !json || !json_lens)) ||
        (logs && !log_lens) || (recs && !rec_lens))
        return RS_ERR_INVALID;
    if (seq < sink->owner_seq) return RS_ERR_STATE;
    if (n == 0) {
        sink->owner_seq = seq;
        pthread_mutex_lock(&sink->lock);
        sink->last_seq = seq;
        rs_redis_done_locked(sink);
        pthread_mutex_unlock(&sink->lock);
        return RS_OK;
    }
    if (!sink->started) {
        rs_err_t err = rs_redis_writer_start(sink);
        if (err != RS_OK) return err;
    }

    /* head only grows: a stale value just means less room.  An empty ring
     * starts its next batch at its first byte again (head = tail moved to
     * the next multiple of cap; the writer holds no position then: it has
     * completed everything up to tail), so while Redis keeps up the batches
     * reuse the same warm pages instead of walking all of
     * redis.buffer_bytes (a first touch of each of its pages, ~0.3 page
     * faults per event in the e2e bench's first 100 000 events, and no
     * cache reuse). */
    pthread_mutex_lock(&sink->lock);
    if (sink->head == sink->tail && sink->tail % sink->cap)
        sink->head = sink->tail = (sink->tail / sink->cap + 1) * sink->cap;
    uint64_t head = sink->head, start = sink->tail;
    pthread_mutex_unlock(&sink->lock);
    rs_ring_w_t w = {.ring = sink->ring, .cap = sink->cap, .pos = start,
                     .limit = head + sink->cap, .off = start % sink->cap};
    const int64_t now_us = rs_clock_mono_us();
    rs_redis_plan(sink, scores, n, 1, now_us / 1000);
    rs_redis_entry_t h = {.seq = seq, .nscores = (uint32_t)n,
                          .built_us = now_us, .gen = sink->ix_gen};
    rs_ring_put(&w, &h, sizeof(h)); /* placeholder, filled in below */
    rs_redis_build(sink, &w, scores, n, json, json_lens, recs, rec_lens,
                   logs, log_lens, &h.ncmds, &h.ninputs, &h.tail_cmds,
                   &h.tail_bytes);
    uint64_t need = w.pos - start;
    if (need > sink->cap) {
        rs_error("sink", "redis: batch %" PRIu64 " of %d score(s) needs %"
                 PRIu64 " bytes, more than redis.buffer_bytes (%" PRIu64
                 "): not queued", seq, n, need, sink->cap);
        return RS_ERR_TOOBIG;
    }
    if (w.pos > w.limit) {
        RS_INC(sink->c.buffer_full);
        return RS_ERR_AGAIN;
    }
    h.bytes = need - sizeof(h);
    rs_ring_copy_in(sink->ring, sink->cap, start, &h, sizeof(h));
    rs_redis_commit(sink, scores, n); /* queued: written, in order */

    sink->owner_seq = seq;
    pthread_mutex_lock(&sink->lock);
    sink->tail = w.pos;
    if (sink->queued++ == 0) sink->head_seq = seq;
    sink->last_seq = seq;
    uint64_t used = sink->tail - sink->head;
    atomic_store_explicit(&sink->c.buffer_bytes, used, memory_order_relaxed);
    atomic_store_explicit(&sink->c.queued_batches, sink->queued,
                          memory_order_relaxed);
    if (used > RS_LOAD(sink->c.buffer_peak))
        atomic_store_explicit(&sink->c.buffer_peak, used,
                              memory_order_relaxed);
    rs_redis_done_locked(sink);
    /* busy, the writer finds this entry when it looks again; holding, it
     * is woken only by enough bytes */
    if (sink->wstate == RS_REDIS_W_IDLE ||
        (sink->wstate == RS_REDIS_W_HOLD && used >= RS_REDIS_HOLD_BYTES))
        pthread_cond_signal(&sink->work_cv);
    pthread_mutex_unlock(&sink->lock);
    return RS_OK;
}

int rs_sink_redis_record_format(const rs_sink_redis_t *sink) {
    return sink->conf.record_format;
}

uint64_t rs_sink_redis_done(const rs_sink_redis_t *sink) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    return atomic_load_explicit(&s->done, memory_order_acquire);
}

rs_err_t rs_sink_redis_wait(rs_sink_redis_t *sink, uint64_t seq,
                            int timeout_ms) {
    if (rs_sink_redis_done(sink) >= seq) return RS_OK;
    if (timeout_ms == 0) return RS_ERR_TIMEOUT;
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    struct timespec ts = rs_redis_abstime(deadline);
    pthread_mutex_lock(&sink->lock);
    if (rs_sink_redis_done(sink) < seq) {
        /* someone waits for these entries: no holding them */
        sink->flush_now = 1;
        if (sink->wstate == RS_REDIS_W_HOLD)
            pthread_cond_signal(&sink->work_cv);
    }
    while (rs_sink_redis_done(sink) < seq) {
        if (timeout_ms < 0)
            pthread_cond_wait(&sink->done_cv, &sink->lock);
        else if (pthread_cond_timedwait(&sink->done_cv, &sink->lock, &ts) ==
                 ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&sink->lock);
    return rs_sink_redis_done(sink) >= seq ? RS_OK : RS_ERR_TIMEOUT;
}

int rs_sink_redis_healthy(const rs_sink_redis_t *sink) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    return atomic_load_explicit(&s->healthy, memory_order_relaxed);
}

void rs_sink_redis_stats(const rs_sink_redis_t *sink,
                         rs_sink_redis_stats_t *st) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    memset(st, 0, sizeof(*st));
    st->writes = RS_LOAD(s->c.writes);
    st->scores = RS_LOAD(s->c.scores);
    st->io_errors = RS_LOAD(s->c.io_errors);
    st->errors = RS_LOAD(s->c.errors);
    st->reconnects = RS_LOAD(s->c.reconnects);
    st->buffer_bytes = RS_LOAD(s->c.buffer_bytes);
    st->buffer_max = s->cap;
    st->buffer_peak = RS_LOAD(s->c.buffer_peak);
    st->queued_batches = RS_LOAD(s->c.queued_batches);
    st->buffer_full = RS_LOAD(s->c.buffer_full);
    st->written = RS_LOAD(s->c.written);
    st->inputs = RS_LOAD(s->c.inputs);
    st->write_errors = RS_LOAD(s->c.write_errors);
    st->rejected = RS_LOAD(s->c.rejected);
    st->outages = RS_LOAD(s->c.outages);
    st->flushes = RS_LOAD(s->c.flushes);
    st->done_seq = rs_sink_redis_done(sink);
    st->healthy = rs_sink_redis_healthy(sink);
}
