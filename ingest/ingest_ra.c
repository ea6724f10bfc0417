/* ingest_ra.c -- the read-ahead (topics.read_ahead): while the owner
 * thread scores batch N, an ingest thread reads batch N+1 from the
 * consumer queue (rd_kafka_consume_batch_queue, a chunk per call) and
 * decodes its payloads (rs_ingest_payload: pure) into a preallocated
 * double buffer; the owner takes the filled buffer and hands back the one
 * it drained.
 *
 * What stays on the owner thread (so every semantic of ingest.h holds
 * as without the read-ahead): the head's state (replay flag, counters),
 * the checks with state (event time bound, dead letters), the task merge,
 * the rebalances and every call that changes what the consumer fetches
 * (assign, pause, resume).
 * - Rebalances: librdkafka serves the rebalance callback inside
 *   rd_kafka_consume_batch_queue, on the ingest thread.  The callback is
 *   forwarded: the ingest thread blocks in it while the owner runs it
 *   (rs_ingest_rebalance_cb, with the service's assign / revoke callbacks)
 *   from rs_ingest_poll.  Before it returns, the owner drops the
 *   read-ahead messages of the partitions that left (read, not returned:
 *   the new owner reads them again; their offsets were never stored).
 *   Messages that the interrupted consume call had collected before the
 *   callback are filtered by the ingest thread when the call returns: a
 *   partition revoked in the call and not assigned again loses them; one
 *   assigned again keeps only what follows its last offset going back
 *   (librdkafka 2.x purges the outdated ones itself; this is the guard).
 * - Version changes: librdkafka 2.0.2's batch consume is not safe against
 *   pause / resume / assign run in parallel on another thread (its
 *   CHANGELOG, "Known issues", 2.0.0).  The owner runs those between two
 *   consume calls: rs_ingest_ctl_begin() asks the ingest thread to stop at
 *   the end of its call (rd_kafka_queue_yield wakes a waiting one) and
 *   waits; rs_ingest_ctl_end() lets it go on.  Inside a forwarded
 *   rebalance the ingest thread is parked in the callback already.
 * - Lifetime of what the owner reads: the owner's buffer (its messages
 *   and their rd_kafka_message_t) stays its own until it is drained and
 *   rs_ingest_ra_done() says the checks (which need the Kafka message
 *   for a dead letter) are done; the ingest thread destroys the Kafka
 *   messages when it reuses the buffer.
 * - Copies: none on the way in.  The ingest thread decodes into scratch
 *   slots and publishes a message by exchanging its scratch slot with
 *   the buffer's free slot at that place; the owner does not copy it
 *   into the task merge either: it gives the merge that slot and puts a
 *   free slot of the merge's in its place (rs_ingest_ra_swap); nor does
 *   the merge copy it out to the service: rs_ingest_poll_ref lends the
 *   slot until the service's next poll (imerge.h), before which no slot
 *   of the merge's is handed to this thread again.  So the
 *   scratch's, the buffers' and the merge's slots circulate; they all
 *   live until rs_ingest_destroy (ing->ra_store).  A slot is written only
 *   by whoever holds it where nobody else reads: the ingest thread its
 *   scratch, the owner the merge's.  (A decoded event's unused numeric
 *   and categorical entries are zero: every decoder clears the record
 *   first.)
 * - Dynamic batching is kept: the ingest thread appends what arrives to
 *   the buffer being filled, so the owner takes everything read while it
 *   scored the previous batch (up to batch_max).
 * - Bounded: at most two buffers of `cap` (batch_max) messages are read
 *   ahead; with both full the ingest thread waits for the owner to take
 *   one and does not call librdkafka meanwhile, so a rebalance callback
 *   (and max.poll.interval.ms) waits for the owner's next take -- the
 *   scoring of one batch more than without the read-ahead (the service
 *   takes a whole buffer per poll).  A reader that takes a few messages
 *   per poll delays rebalances until it drained 2 cap messages.
 *
 * - The tap (rs_ingest_set_tap: the counterparty stage's feed) gets each
 *   chunk on the ingest thread after the rebalance filter and before the
 *   chunk is published, so the owner never takes a message the tap has
 *   not seen.  `gen` counts the changes of what the consumer fetches
 *   (forwarded rebalances, ctl pairs); a chunk carries the gen read when
 *   its consume call starts: a ctl pair bumps gen as it begins (maybe
 *   while a call runs) and changes the consumer only after that call
 *   returned, so the call's chunk is the old gen's and the first chunk
 *   read after the change the new one's (read after the call, as before,
 *   the chunk read before a forward seek carried the new gen and the one
 *   after it the same: the tap took the jump as a contiguous read).  A
 *   chunk whose call served a forwarded rebalance gets a fresh gen per
 *   message (rs_ra_tap).
 *
 * Threads: rs_ingest_ra_start / _stop / _next / _done / _held, the ctl
 * pair and the serve step run on the owner thread; rs_ingest_ra_main on
 * the ingest thread; rs_ingest_ra_forward on the ingest thread (inside the
 * consume call).  One mutex guards the exchange; the per-message path
 * takes it once per buffer, not per message.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "ingest/ingest_int.h"

_Atomic int rs_ingest_test_ctl_race; /* tests only (ingest_int.h) */

#define RS_RA_CHUNK 64       /* messages per consume call (one decode step) */
#define RS_RA_WAIT_MS 100    /* a consume call's longest wait (stop, ctl)  */
#define RS_RA_RB_MAX 4096    /* partitions tracked per forwarded rebalance */

typedef struct rs_ra_buf_s {
    rd_kafka_message_t **rkms; /* [cap] in read order; NULL: dropped     */
    rs_msg_t **msgs;           /* [cap] head (pure part) + payload: slots,
                                * exchanged with the task merge's        */
    rs_err_t *derr;            /* [cap] payload decode results            */
    int n;                     /* items (messages and error events)       */
} rs_ra_buf_t;

struct rs_ingest_ra_s {
    rs_ingest_t *ing;
    rd_kafka_queue_t *q;       /* the consumer queue                       */
    pthread_t tid;
    int started;
    int cap;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rs_ra_buf_t buf[2];
    /* under mu */
    int fill;                  /* buf[fill]: the ingest thread's          */
    int npub;                  /* ... items published in it               */
    int stale;                 /* ... items of its previous round, to be
                                * destroyed before it is written (the
                                * owner handed it back)                   */
    int stop;
    int busy;                  /* inside a consume call                    */
    int ctl_want;              /* the owner waits to change the consumer  */
    uint64_t gen;              /* what the consumer fetches may have
                                * changed since (rs_ingest_tap_fn)        */
    int rb_req, rb_done;       /* a forwarded rebalance: asked, served    */
    rd_kafka_resp_err_t rb_err;
    rd_kafka_topic_partition_list_t *rb_parts;
    rs_ingest_pos_t *rb_gone;  /* [RS_RA_RB_MAX] revoked in this call     */
    rs_ingest_pos_t *rb_new;   /* [RS_RA_RB_MAX] assigned in this call    */
    int nrb_gone, nrb_new;
    rd_kafka_message_t **scr;  /* [RS_RA_CHUNK] the consume call's messages
                                * (read by rs_ingest_ra_held under mu;
                                * left as they are until published)      */
    int nscr;
    rd_kafka_message_t **sout; /* [RS_RA_CHUNK] ... those kept, decoded   */
    rd_kafka_message_t **sdrop; /* [RS_RA_CHUNK] ... those dropped: destroyed
                                * once no longer in scr (nscr = 0)        */
    /* the owner's side */
    int cur;                   /* buf[cur] is being drained: -1 none       */
    int pos;                   /* ... next item                            */
    int held;                  /* a drained buffer's messages still in use
                                * (until rs_ingest_ra_done)               */
    /* the ingest thread's scratch */
    rs_msg_t **smsgs;          /* [RS_RA_CHUNK] scratch: slots, exchanged
                                * with the buffer's as they are published */
    rs_ingest_tap_msg_t *stap; /* [RS_RA_CHUNK] the tap's view of sout     */
    uint64_t tap_gen;          /* the last gen handed to the tap           */
    int tap_any;               /* ... one was                              */
    _Atomic int room_wait;     /* the ingest thread waits for the owner to
                                * take a full buffer (rs_ingest_ra_full)  */
    rs_err_t *sderr;           /* [RS_RA_CHUNK]                            */
    rd_kafka_message_t **junk; /* [cap] stale messages to destroy          */
};

/* ---------------------------------------------------------- helpers */

static int rs_ra_in(const rs_ingest_pos_t *v, int n, int topic,
                    int32_t partition) {
    for (int i = 0; i < n; i++)
        if (v[i].topic == topic && v[i].partition == partition) return 1;
    return 0;
}

/* The pure head of a message (what needs no state): 1 if it is for us. */
static int rs_ra_head(const rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                      rs_msg_t *m) {
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    if (!strcmp(tname, ing->conf.topic_events)) m->topic = RS_MSG_TOPIC_EVENTS;
    else if (!strcmp(tname, ing->conf.topic_labels))
        m->topic = RS_MSG_TOPIC_LABELS;
    else return 0;
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->produced_ms = rd_kafka_message_timestamp(rkm, NULL);
    m->received_us = rs_clock_mono_us();
    m->reason[0] = '\0';
    m->replay = 0;
    return 1;
}

/* Drop the items of b[from, to) whose partition is in gone[0..ngone)
 * (destroying their Kafka messages); returns the new end. */
static int rs_ra_drop(rs_ra_buf_t *b, int from, int to,
                      const rs_ingest_pos_t *gone, int ngone) {
    int k = from;
    for (int i = from; i < to; i++) {
        rd_kafka_message_t *rkm = b->rkms[i];
        if (rkm && !rkm->err && rs_ra_in(gone, ngone, b->msgs[i]->topic,
                                         b->msgs[i]->partition)) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (k != i) { /* exchange the slots: none lost, none twice */
            rs_msg_t *t = b->msgs[k];
            b->rkms[k] = rkm;
            b->msgs[k] = b->msgs[i];
            b->msgs[i] = t;
            b->derr[k] = b->derr[i];
        }
        k++;
    }
    return k;
}

/* ------------------------------------------------ the ingest thread */

/* Filter the consume call's scratch after a rebalance served inside it
 * (design notes); returns the items kept (compacted in place). */
static int rs_ra_filter(rs_ingest_ra_t *ra, int k, const rs_ingest_pos_t *gone,
                        int ngone, const rs_ingest_pos_t *nw, int nnew,
                        int *ndrop) {
    int out = 0;
    for (int i = 0; i < k; i++) {
        rd_kafka_message_t *rkm = ra->sout[i];
        const rs_msg_t *m = ra->smsgs[i];
        int drop = 0;
        if (!rkm->err && rs_ra_in(gone, ngone, m->topic, m->partition)) {
            drop = !rs_ra_in(nw, nnew, m->topic, m->partition);
            for (int j = i + 1; !drop && j < k; j++) /* read again later */
                drop = !ra->sout[j]->err && ra->smsgs[j]->topic == m->topic &&
                       ra->smsgs[j]->partition == m->partition &&
                       ra->smsgs[j]->offset <= m->offset;
        }
        if (drop) {
            ra->sdrop[(*ndrop)++] = rkm;
            continue;
        }
        if (out != i) { /* exchange the slots: none lost, none twice */
            rs_msg_t *t = ra->smsgs[out];
            ra->sout[out] = rkm;
            ra->smsgs[out] = ra->smsgs[i];
            ra->smsgs[i] = t;
            ra->sderr[out] = ra->sderr[i];
        }
        out++;
    }
    return out;
}

/* Hand the chunk's messages sout[0..n) to the tap, if any, all with
 * `gen`, or (gen_each non-zero: the chunk spans a rebalance) one call per
 * message, the i-th with gen_each + i.  Without a message, a gen that
 * moved since the last call (`gen_after`: what the next chunk starts
 * with) is handed on alone (n = 0), so the tap learns of a change (a
 * revoke, a pause) that brings no message. */
static void rs_ra_tap(rs_ingest_t *ing, rs_ingest_ra_t *ra, int n,
                      uint64_t gen, uint64_t gen_each, uint64_t gen_after) {
    pthread_mutex_lock(&ing->tap_mu);
    if (ing->tap) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            const rd_kafka_message_t *rkm = ra->sout[i];
            if (rkm->err) continue;
            ra->stap[k++] = (rs_ingest_tap_msg_t){
                ra->smsgs[i]->topic, rkm->partition, rkm->offset, rkm->payload,
                rkm->len};
        }
        if (k && !gen_each) {
            ing->tap(ing->tap_opaque, ra->stap, k, gen);
            ra->tap_gen = gen;
        }
        for (int i = 0; gen_each && i < k; i++) {
            ing->tap(ing->tap_opaque, &ra->stap[i], 1, gen_each + (uint64_t)i);
            ra->tap_gen = gen_each + (uint64_t)i;
        }
        if (!k && ra->tap_any && gen_after != ra->tap_gen) {
            ing->tap(ing->tap_opaque, NULL, 0, gen_after);
            ra->tap_gen = gen_after;
        }
        ra->tap_any |= k > 0;
    }
    pthread_mutex_unlock(&ing->tap_mu);
}

static void *rs_ra_main(void *arg) {
    rs_ingest_ra_t *ra = arg;
    rs_ingest_t *ing = ra->ing;
    pthread_setname_np(pthread_self(), "rs-ingest");
    for (;;) {
        pthread_mutex_lock(&ra->mu);
        while (!ra->stop && (ra->ctl_want || ra->npub == ra->cap)) {
            atomic_store(&ra->room_wait, !ra->ctl_want);
            pthread_cond_wait(&ra->cv, &ra->mu);
        }
        atomic_store(&ra->room_wait, 0);
        if (ra->stop) {
            pthread_mutex_unlock(&ra->mu);
            break;
        }
        int nstale = ra->stale;
        if (nstale) { /* the owner's old buffer, handed back */
            memcpy(ra->junk, ra->buf[ra->fill].rkms,
                   (size_t)nstale * sizeof(*ra->junk));
            ra->stale = 0;
        }
        int room = ra->cap - ra->npub;
        if (room > RS_RA_CHUNK) room = RS_RA_CHUNK;
        ra->busy = 1;
        ra->nrb_gone = ra->nrb_new = 0;
        /* The chunk's gen is the one its call STARTS with: a ctl pair
         * (seek, pause, assign) bumps gen as it begins, while a call may
         * still be running, and is made only once that call returned, so
         * the call's chunk was read before the change: it belongs to the
         * old gen, and the next chunk (read after it) to the new one. */
        uint64_t gen0 = ra->gen;
        pthread_mutex_unlock(&ra->mu);
        for (int i = 0; i < nstale; i++)
            if (ra->junk[i]) rd_kafka_message_destroy(ra->junk[i]);

        /* What is there now; else wait for the first message, then take
         * what came with it (a fetch response's other partitions are
         * queued right behind it): handed over alone, the first message
         * of a caught-up consumer made a batch of its own, so each fetch
         * became two batches (two wake-ups of the owner, two rounds of
         * the scoring loop's per-batch work: Redis, produce, trainer). */
        ssize_t k = rd_kafka_consume_batch_queue(ra->q, 0, ra->scr,
                                                 (size_t)room);
        if (k == 0) {
            k = rd_kafka_consume_batch_queue(ra->q, RS_RA_WAIT_MS, ra->scr, 1);
            if (k == 1 && room > 1) {
                ssize_t k2 = rd_kafka_consume_batch_queue(
                    ra->q, 0, ra->scr + 1, (size_t)room - 1);
                if (k2 > 0) k += k2;
            }
        }
        if (k < 0) k = 0;
        if (k > 0 && atomic_load(&rs_ingest_test_ctl_race) == 1) {
            /* tests only: hold a chunk with a message, read in one gen,
             * until the owner has begun a ctl pair (its gen bumped while
             * the call's chunk is out) */
            int msg = 0;
            for (int i = 0; i < (int)k; i++) msg |= !ra->scr[i]->err;
            pthread_mutex_lock(&ra->mu);
            if (msg && ra->gen == gen0)
                atomic_store(&rs_ingest_test_ctl_race, 2);
            while (atomic_load(&rs_ingest_test_ctl_race) == 2 &&
                   !ra->ctl_want && !ra->stop) {
                pthread_mutex_unlock(&ra->mu);
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&ra->mu);
            }
            pthread_mutex_unlock(&ra->mu);
        }

        pthread_mutex_lock(&ra->mu);
        ra->busy = 0;
        ra->nscr = (int)k;
        int ngone = ra->nrb_gone, nnew = ra->nrb_new;
        /* A rebalance served inside the call (forwarded: gen moved during
         * it) splits the chunk at a point not known here, and a partition
         * assigned again may go on from anywhere: no two of its messages
         * are known to be contiguous.  Each gets a gen of its own (fresh
         * values, and the next chunk's start is past them), so the tap
         * takes none of them as a contiguous read. */
        uint64_t gen = gen0, gen_each = 0;
        if (ra->gen != gen0) {
            gen_each = ra->gen + 1;
            ra->gen += (uint64_t)k + 1;
        }
        uint64_t gen_after = gen_each ? ra->gen : gen0;
        pthread_cond_broadcast(&ra->cv); /* ctl waiters */
        pthread_mutex_unlock(&ra->mu);

        /* Decode (pure), off the owner thread. */
        int n = 0, ndrop = 0;
        for (int i = 0; i < (int)k; i++) {
            rd_kafka_message_t *rkm = ra->scr[i];
            if (!rkm->err) {
                if (!rs_ra_head(ing, rkm, ra->smsgs[n])) {
                    rs_debug("ingest", "ignoring message from topic '%s'",
                             rd_kafka_topic_name(rkm->rkt));
                    ra->sdrop[ndrop++] = rkm;
                    continue;
                }
                ra->sderr[n] = rs_ingest_payload(&ing->conf, rkm,
                                                 ra->smsgs[n]);
                if (ra->sderr[n] != RS_OK) /* reason kept */
                    ra->smsgs[n]->kind = RS_MSG_REJECT;
            }
            ra->sout[n++] = rkm;
        }
        if (ngone)
            n = rs_ra_filter(ra, n, ra->rb_gone, ngone, ra->rb_new, nnew,
                             &ndrop);

        /* The tap (the counterparty stage's feed) sees them before the
         * owner can take them. */
        rs_ra_tap(ing, ra, n, gen, gen_each, gen_after);

        /* Append to the buffer being filled (the owner may have taken the
         * previous one meanwhile: then this is the one it handed back). */
        pthread_mutex_lock(&ra->mu);
        if (ra->stop || n == 0) {
            int stop = ra->stop;
            ra->nscr = 0;
            pthread_mutex_unlock(&ra->mu);
            for (int i = 0; i < ndrop; i++) rd_kafka_message_destroy(ra->sdrop[i]);
            if (!stop) continue;
            for (int i = 0; i < n; i++) rd_kafka_message_destroy(ra->sout[i]);
            break;
        }
        rs_ra_buf_t *b = &ra->buf[ra->fill];
        for (int i = 0; i < ra->stale; i++) /* under mu: rare, short */
            if (b->rkms[i]) rd_kafka_message_destroy(b->rkms[i]);
        ra->stale = 0;
        /* Published by exchanging the slots: the decoded scratch slot
         * goes into the buffer and the buffer's free slot (unpublished
         * here, so nobody reads it) becomes scratch: no copy.  The
         * scratch's slots thus circulate with the others (design notes). */
        for (int i = 0; i < n; i++) {
            b->rkms[ra->npub + i] = ra->sout[i];
            b->derr[ra->npub + i] = ra->sderr[i];
            if (!ra->sout[i]->err) {
                rs_msg_t *t = b->msgs[ra->npub + i];
                b->msgs[ra->npub + i] = ra->smsgs[i];
                ra->smsgs[i] = t;
            }
        }
        ra->npub += n;
        ra->nscr = 0;
        pthread_cond_broadcast(&ra->cv);
        pthread_mutex_unlock(&ra->mu);
        for (int i = 0; i < ndrop; i++) rd_kafka_message_destroy(ra->sdrop[i]);
    }
    return NULL;
}

/* The rebalance callback on the ingest thread: park here while the owner
 * runs it.  Returns 0 if not on the ingest thread (run it here).
 * The tap hears of the new gen (n = 0) BEFORE this thread parks: the owner
 * serves the callback only at its next poll, after the batch it is
 * scoring, and until then this thread reads nothing -- a tap that relies
 * on the read-ahead for some partitions (the counterparty stage's feed,
 * whose own consumer pauses them) must read them itself meanwhile, or
 * that batch's lookups wait for what only this thread would read. */
int rs_ingest_ra_forward(rs_ingest_t *ing, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra || !ra->started || !pthread_equal(pthread_self(), ra->tid))
        return 0;
    pthread_mutex_lock(&ra->mu);
    ra->gen++;
    uint64_t gen = ra->gen;
    pthread_mutex_unlock(&ra->mu);
    pthread_mutex_lock(&ing->tap_mu);
    if (ing->tap && ra->tap_any && gen != ra->tap_gen) {
        ing->tap(ing->tap_opaque, NULL, 0, gen);
        ra->tap_gen = gen;
    }
    pthread_mutex_unlock(&ing->tap_mu);
    pthread_mutex_lock(&ra->mu);
    ra->rb_req = 1;
    ra->rb_done = 0;
    ra->rb_err = err;
    ra->rb_parts = parts;
    pthread_cond_broadcast(&ra->cv);
    while (!ra->rb_done) pthread_cond_wait(&ra->cv, &ra->mu);
    ra->rb_req = ra->rb_done = 0;
    ra->rb_parts = NULL;
    pthread_mutex_unlock(&ra->mu);
    return 1;
}

/* ----------------------------------------------------- the owner side */

/* Run a forwarded rebalance here; called with mu held, returns with it. */
static void rs_ra_serve(rs_ingest_t *ing, rs_ingest_ra_t *ra) {
    rd_kafka_resp_err_t err = ra->rb_err;
    rd_kafka_topic_partition_list_t *parts = ra->rb_parts;
    int ngone0 = ing->ngone;
    pthread_mutex_unlock(&ra->mu);
    ing->in_rb = 1;
    rs_ingest_rebalance_cb(ing->rk, err, parts, ing);
    ing->in_rb = 0;
    pthread_mutex_lock(&ra->mu);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt && ra->nrb_new < RS_RA_RB_MAX; i++) {
            int t = !strcmp(parts->elems[i].topic, ing->conf.topic_events)
                        ? RS_MSG_TOPIC_EVENTS
                    : !strcmp(parts->elems[i].topic, ing->conf.topic_labels)
                        ? RS_MSG_TOPIC_LABELS : -1;
            if (t >= 0)
                ra->rb_new[ra->nrb_new++] =
                    (rs_ingest_pos_t){t, parts->elems[i].partition, -1};
        }
    }
    /* The partitions that left (rs_ingest_gone_add in the callback): drop
     * their read-ahead, published or in the owner's buffer. */
    int ng = ing->ngone - ngone0;
    const rs_ingest_pos_t *gone = ing->gone + ngone0;
    if (ng > 0) {
        for (int i = 0; i < ng && ra->nrb_gone < RS_RA_RB_MAX; i++)
            ra->rb_gone[ra->nrb_gone++] = gone[i];
        int before = ra->npub;
        if (!ra->stale) /* else nothing is published in it yet */
            ra->npub = rs_ra_drop(&ra->buf[ra->fill], 0, ra->npub, gone, ng);
        int dropped = before - ra->npub;
        if (ra->cur >= 0) {
            rs_ra_buf_t *b = &ra->buf[ra->cur];
            int end = rs_ra_drop(b, ra->pos, b->n, gone, ng);
            dropped += b->n - end;
            b->n = end;
        }
        if (dropped)
            rs_debug("ingest", "%d read-ahead message(s) of partitions that "
                     "left dropped", dropped);
    }
    ra->rb_done = 1;
    ra->rb_req = 0;
    pthread_cond_broadcast(&ra->cv);
}

int rs_ingest_ra_next(rs_ingest_t *ing, int wait_ms, rd_kafka_message_t **rkm,
                      rs_msg_t **m, rs_err_t *derr) {
    rs_ingest_ra_t *ra = ing->ra;
    for (;;) {
        if (ra->cur >= 0) {
            rs_ra_buf_t *b = &ra->buf[ra->cur];
            if (ra->pos < b->n) {
                int i = ra->pos++;
                *rkm = b->rkms[i];
                *m = b->msgs[i];
                *derr = b->derr[i];
                if (!(*rkm)->err) ra->held = 1;
                return 1;
            }
        }
        if (ra->held) return -1; /* rs_ingest_ra_done first */
        int64_t deadline =
            rs_clock_mono_us() + (int64_t)RS_MAX(wait_ms, 0) * 1000;
        pthread_mutex_lock(&ra->mu);
        int got = 0;
        for (;;) {
            if (ra->rb_req && !ra->rb_done) {
                rs_ra_serve(ing, ra);
                break; /* the caller sees the rebalance (rb_seq) first */
            }
            if (ra->npub > 0 && !ra->stale) { /* take it, hand ours back */
                int old = ra->cur;
                ra->buf[ra->fill].n = ra->npub;
                ra->cur = ra->fill;
                ra->pos = 0;
                ra->fill ^= 1;
                ra->npub = 0;
                ra->stale = old >= 0 ? ra->buf[old].n : 0;
                got = 1;
                pthread_cond_broadcast(&ra->cv);
                break;
            }
            if (ing->fatal) break;
            int64_t left = deadline - rs_clock_mono_us();
            if (left <= 0) break;
            struct timespec ts;
            int64_t abs_us = rs_clock_mono_us() + left;
            ts.tv_sec = (time_t)(abs_us / 1000000);
            ts.tv_nsec = (long)(abs_us % 1000000) * 1000;
            pthread_cond_timedwait(&ra->cv, &ra->mu, &ts);
        }
        pthread_mutex_unlock(&ra->mu);
        if (!got) return 0;
    }
}

rs_msg_t *rs_ingest_ra_swap(rs_ingest_t *ing, rs_msg_t *fresh) {
    rs_ingest_ra_t *ra = ing->ra;
    rs_ra_buf_t *b = &ra->buf[ra->cur];
    rs_msg_t *m = b->msgs[ra->pos - 1];
    b->msgs[ra->pos - 1] = fresh;
    return m;
}

void rs_ingest_ra_done(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra || !ra->held) return;
    ra->held = 0;
}

int rs_ingest_ra_held(rs_ingest_t *ing, int topic, int32_t partition,
                      int64_t *first, int *inflight) {
    rs_ingest_ra_t *ra = ing->ra;
    int n = 0;
    int64_t lo = INT64_MAX;
    if (inflight) *inflight = 0;
    if (first) *first = -1;
    if (!ra || !ra->started) return 0;
    pthread_mutex_lock(&ra->mu);
    /* busy is set under mu before the consume call and cleared with nscr
     * set, so under mu the call's messages are either still in it (busy)
     * or in scr / the buffers (counted below). */
    if (inflight) *inflight = ra->busy;
    for (int s = 0; s < 3; s++) {
        rd_kafka_message_t **v;
        rs_msg_t *const *ms = NULL;
        int from, to;
        if (s == 0) {
            if (ra->cur < 0) continue;
            v = ra->buf[ra->cur].rkms;
            ms = ra->buf[ra->cur].msgs;
            from = ra->pos;
            to = ra->buf[ra->cur].n;
        } else if (s == 1) {
            if (ra->stale) continue;
            v = ra->buf[ra->fill].rkms;
            ms = ra->buf[ra->fill].msgs;
            from = 0;
            to = ra->npub;
        } else {
            v = ra->scr;
            from = 0;
            to = ra->nscr;
        }
        for (int i = from; i < to; i++) {
            const rd_kafka_message_t *rkm = v[i];
            if (!rkm || rkm->err || rkm->partition != partition) continue;
            int t = ms ? ms[i]->topic
                       : !strcmp(rd_kafka_topic_name(rkm->rkt),
                                 ing->conf.topic_labels);
            if (t != topic) continue;
            n++;
            if (rkm->offset < lo) lo = rkm->offset;
        }
    }
    pthread_mutex_unlock(&ra->mu);
    if (first) *first = n ? lo : -1;
    return n;
}

void rs_ingest_set_tap(rs_ingest_t *ing, rs_ingest_tap_fn *fn, void *opaque) {
    pthread_mutex_lock(&ing->tap_mu); /* waits for a call in progress */
    ing->tap = fn;
    ing->tap_opaque = fn ? opaque : NULL;
    pthread_mutex_unlock(&ing->tap_mu);
}

int rs_ingest_ra_parked(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra || !ra->started) return 0;
    pthread_mutex_lock(&ra->mu);
    int r = ra->rb_req && !ra->rb_done;
    pthread_mutex_unlock(&ra->mu);
    return r;
}

int rs_ingest_ra_full(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    return ra && ra->started && atomic_load(&ra->room_wait);
}

int64_t rs_ingest_watermark(rs_ingest_t *ing, int topic, int32_t partition) {
    int64_t lo = -1, hi = -1;
    if (topic < 0 || topic > 1 ||
        rd_kafka_get_watermark_offsets(ing->rk, rd_kafka_topic_name(ing->rkt[topic]),
                                       partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
        return -1;
    return hi;
}

void rs_ingest_ctl_begin(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra || !ra->started || ing->in_rb) return;
    pthread_mutex_lock(&ra->mu);
    ra->ctl_want = 1;
    ra->gen++;
    rd_kafka_queue_yield(ra->q);
    for (;;) {
        if (ra->rb_req && !ra->rb_done) { /* parked in a callback */
            rs_ra_serve(ing, ra);
            continue;
        }
        if (!ra->busy) break;
        pthread_cond_wait(&ra->cv, &ra->mu);
    }
    pthread_mutex_unlock(&ra->mu);
}

void rs_ingest_ctl_end(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra || !ra->started || ing->in_rb) return;
    pthread_mutex_lock(&ra->mu);
    ra->ctl_want = 0;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
}

rs_err_t rs_ingest_ra_start(rs_ingest_t *ing, int cap) {
    rs_ingest_ra_t *ra = rs_calloc(1, sizeof(*ra));
    ra->ing = ing;
    ra->cap = cap;
    ra->cur = -1;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_condattr_t ca; /* timed waits on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ra->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < 2; i++) {
        ra->buf[i].rkms = rs_calloc((size_t)cap, sizeof(*ra->buf[i].rkms));
        ra->buf[i].msgs = rs_calloc((size_t)cap, sizeof(*ra->buf[i].msgs));
        ra->buf[i].derr = rs_calloc((size_t)cap, sizeof(*ra->buf[i].derr));
    }
    ra->rb_gone = rs_calloc(RS_RA_RB_MAX, sizeof(*ra->rb_gone));
    ra->rb_new = rs_calloc(RS_RA_RB_MAX, sizeof(*ra->rb_new));
    ra->scr = rs_calloc(RS_RA_CHUNK, sizeof(*ra->scr));
    ra->sout = rs_calloc(RS_RA_CHUNK, sizeof(*ra->sout));
    ra->sdrop = rs_calloc(RS_RA_CHUNK, sizeof(*ra->sdrop));
    ra->smsgs = rs_calloc(RS_RA_CHUNK, sizeof(*ra->smsgs));
    ra->stap = rs_calloc(RS_RA_CHUNK, sizeof(*ra->stap));
    ra->sderr = rs_calloc(RS_RA_CHUNK, sizeof(*ra->sderr));
    ra->junk = rs_calloc((size_t)cap, sizeof(*ra->junk));
    /* The slots: a buffer's point into the store at first, and are
     * exchanged with the task merge's free slots as the owner takes the
     * messages (rs_ingest_ra_swap): no copy on the owner thread. */
    if (!ing->ra_store)
        ing->ra_store = rs_calloc((size_t)(2 * cap + RS_RA_CHUNK),
                                  sizeof(*ing->ra_store));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < cap; j++)
            ra->buf[i].msgs[j] = &ing->ra_store[i * cap + j];
    for (int j = 0; j < RS_RA_CHUNK; j++)
        ra->smsgs[j] = &ing->ra_store[2 * cap + j];
    ra->q = rd_kafka_queue_get_consumer(ing->rk);
    ing->ra = ra;
    ra->started = 1; /* before the thread reads it (rs_ingest_ra_forward) */
    if (!ra->q || pthread_create(&ra->tid, NULL, rs_ra_main, ra) != 0) {
        rs_error("ingest", "read-ahead thread: cannot start; reading on the "
                 "owner thread");
        ra->started = 0;
        rs_ingest_ra_stop(ing);
        return RS_ERR_NOMEM;
    }
    rs_info("ingest", "read-ahead: an ingest thread reads and decodes up to "
            "%d messages ahead (topics.read_ahead)", cap);
    return RS_OK;
}

void rs_ingest_ra_stop(rs_ingest_t *ing) {
    rs_ingest_ra_t *ra = ing->ra;
    if (!ra) return;
    if (ra->started) {
        pthread_mutex_lock(&ra->mu);
        ra->stop = 1;
        rd_kafka_queue_yield(ra->q);
        pthread_cond_broadcast(&ra->cv);
        /* A rebalance parked in the ingest thread is served here. */
        while (ra->busy || (ra->rb_req && !ra->rb_done)) {
            if (ra->rb_req && !ra->rb_done) {
                rs_ra_serve(ing, ra);
                continue;
            }
            struct timespec ts;
            int64_t abs_us = rs_clock_mono_us() + 10000;
            ts.tv_sec = (time_t)(abs_us / 1000000);
            ts.tv_nsec = (long)(abs_us % 1000000) * 1000;
            pthread_cond_timedwait(&ra->cv, &ra->mu, &ts);
            rd_kafka_queue_yield(ra->q);
        }
        pthread_mutex_unlock(&ra->mu);
        pthread_join(ra->tid, NULL);
        ra->started = 0;
    }
    /* Read ahead, never returned: not ours to store (the next reader
     * reads it again). */
    for (int i = 0; i < 2; i++) {
        int n = i == ra->fill ? (ra->stale ? ra->stale : ra->npub)
                              : ra->buf[i].n;
        for (int j = 0; j < n; j++)
            if (ra->buf[i].rkms[j]) rd_kafka_message_destroy(ra->buf[i].rkms[j]);
        free(ra->buf[i].rkms);
        free(ra->buf[i].msgs);
        free(ra->buf[i].derr);
    }
    if (ra->q) rd_kafka_queue_destroy(ra->q);
    free(ra->rb_gone);
    free(ra->rb_new);
    free(ra->scr);
    free(ra->sout);
    free(ra->sdrop);
    free(ra->smsgs);
    free(ra->stap);
    free(ra->sderr);
    free(ra->junk);
    pthread_cond_destroy(&ra->cv);
    pthread_mutex_destroy(&ra->mu);
    free(ra);
    ing->ra = NULL;
}
