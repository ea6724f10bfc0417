/* ingest_poll.c -- rs_ingest_poll: read the consumer, decode (payloads on
 * the pool), and with the task merge hand messages over in time order.
 * Moved out of ingest.c; see its design notes.
 *
 * Threads: the owner thread. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/imerge.h"
#include "ingest/ingest_int.h"

/* The task merge's watermark check (imerge.h): nothing to fetch after
 * next_offset - 1 as far as the consumer's cached high watermark says. */
int rs_ingest_merge_end(void *opaque, int topic, int32_t partition,
                        int64_t next_offset) {
    rs_ingest_t *ing = opaque;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(ing->rk,
                                       rd_kafka_topic_name(ing->rkt[topic]),
                                       partition, &lo, &hi))
        return 0;
    return hi >= 0 && next_offset >= hi;
}

/* A partition the task merge paused (hold limit) may fetch again. */
static void rs_ingest_merge_resume(void *opaque, int topic,
                                   int32_t partition) {
    rs_ingest_t *ing = opaque;
    if (ing->paused || ing->leaving) return; /* resumed with the others */
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, rd_kafka_topic_name(ing->rkt[topic]),
                                      partition);
    rs_ingest_ctl_begin(ing);
    rd_kafka_resume_partitions(ing->rk, pl);
    rs_ingest_ctl_end(ing);
    rd_kafka_topic_partition_list_destroy(pl);
}

/* The next message or event of the consumer, waiting up to wait_ms: read
 * ahead (*pre: its message decoded, *perr the payload's result; the
 * Kafka message is the read-ahead's) or from the consumer (*pre NULL; the
 * caller destroys it).  NULL if none (*stalled: the read-ahead wants
 * rs_ingest_ra_done first). */
static rd_kafka_message_t *rs_ingest_next(rs_ingest_t *ing, int wait_ms,
                                          rs_msg_t **pre, rs_err_t *perr,
                                          int *stalled) {
    rd_kafka_message_t *rkm = NULL;
    *pre = NULL;
    *stalled = 0;
    if (!ing->ra) return rd_kafka_consumer_poll(ing->rk, wait_ms);
    int r = rs_ingest_ra_next(ing, wait_ms, &rkm, pre, perr);
    if (r < 0) *stalled = 1;
    return r > 0 ? rkm : NULL;
}

/* Pause the fetch of (topic, partition): the task merge holds too many
 * of its messages. */
static void rs_ingest_merge_pause(rs_ingest_t *ing, int topic,
                                  int32_t partition) {
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, rd_kafka_topic_name(ing->rkt[topic]),
                                      partition);
    rs_ingest_ctl_begin(ing);
    rd_kafka_pause_partitions(ing->rk, pl);
    rs_ingest_ctl_end(ing);
    rd_kafka_topic_partition_list_destroy(pl);
    rs_debug("ingest", "%s/%d: fetch paused, %u messages wait for the other "
             "topic of the task", rd_kafka_topic_name(ing->rkt[topic]),
             (int)partition, rs_imerge_held(ing->im, topic, partition));
}

void rs_ingest_set_pool(rs_ingest_t *ing, rs_pool_t *pool) {
    ing->pool = pool;
}

/* The payload step over the poll's messages [lo, hi) (a pool stage). */
typedef struct rs_ingest_job_s {
    rs_ingest_t *ing;
    rs_msg_t *msgs;        /* decoded into msgs[i], or (NULL) into pm[i] */
} rs_ingest_job_t;

static void rs_ingest_payloads(void *opaque, int lo, int hi, int slice) {
    rs_ingest_job_t *job = opaque;
    (void)slice;
    for (int i = lo; i < hi; i++)
        job->ing->derr[i] = rs_ingest_payload(
            &job->ing->conf, job->ing->rkms[i],
            job->msgs ? &job->msgs[i] : job->ing->pm[i]);
}

/* ------------------------------------------------ the task merge's poll */

/* Drop the messages of rkms/pm[0..n) whose partition left (ing->gone):
 * returns how many are kept. */
static int rs_ingest_merge_drop_gone(rs_ingest_t *ing, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int gone = 0;
        for (int g = 0; g < ing->ngone && !gone; g++)
            gone = ing->gone[g].topic == ing->pm[i]->topic &&
                   ing->gone[g].partition == ing->pm[i]->partition;
        if (gone) {
            if (!ing->ra) rd_kafka_message_destroy(ing->rkms[i]);
            rs_imerge_unslot(ing->im, ing->pm[i]);
            continue;
        }
        ing->rkms[k] = ing->rkms[i];
        ing->pm[k++] = ing->pm[i];
    }
    if (k < n)
        rs_debug("ingest", "%d message(s) of partitions that left during the "
                 "poll dropped", n - k);
    return k;
}

/* Milliseconds left until `deadline` (monotonic µs), rounded up; 0 once
 * it passed. */
static int rs_ingest_wait_left(int64_t deadline) {
    int64_t left = deadline - rs_clock_mono_us();
    return left > 0 ? (int)((left + 999) / 1000) : 0;
}

/* Read what the consumer holds (waiting up to wait_ms for the first
 * message or end of partition), up to cap messages, decode them (as
 * rs_ingest_poll does) and queue them in the task merge.  *drained: the
 * consumer's queue was found empty.  Returns the messages queued plus
 * the ends of partition seen. */
static int rs_ingest_merge_read(rs_ingest_t *ing, int wait_ms, int cap,
                                int *drained) {
    int n = 0, ends = 0;
    uint64_t seq = ing->rb_seq;
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(wait_ms, 0) * 1000;
    *drained = 0;
    ing->ngone = 0;
    while (n < cap) {
        int wait = n == 0 && ends == 0 ? rs_ingest_wait_left(deadline) : 0;
        rs_msg_t *pre;
        rs_err_t perr = RS_OK;
        int stalled;
        rd_kafka_message_t *rkm = rs_ingest_next(ing, wait, &pre, &perr,
                                                 &stalled);
        if (ing->rb_seq != seq) {
            /* a rebalance was served in that call: what was read before it
             * of partitions that left is not ours; what comes after is */
            seq = ing->rb_seq;
            if (ing->ngone) n = rs_ingest_merge_drop_gone(ing, n);
            ing->ngone = 0;
        }
        if (!rkm) {
            if (stalled) break; /* finish these first (not drained) */
            if (n > 0 || ends > 0 || wait == 0) {
                *drained = 1;
                break;
            }
            continue;
        }
        if (pre && !rkm->err) { /* read ahead: decoded already; its slot
                                 * goes to the merge, a free one of the
                                 * merge's takes its place: no copy */
            rs_msg_t *m = rs_ingest_ra_swap(ing, rs_imerge_slot(ing->im));
            rs_ingest_head_state(ing, m);
            ing->derr[n] = perr;
            ing->pm[n] = m;
            ing->rkms[n++] = rkm;
            continue;
        }
        rs_msg_t *m = rs_imerge_slot(ing->im);
        if (!rkm->err && rs_ingest_head(ing, rkm, m)) {
            ing->pm[n] = m;
            ing->rkms[n++] = rkm;
            continue;
        }
        rs_imerge_unslot(ing->im, m);
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) ends++;
        if (rkm->err) rs_ingest_consumer_error(ing, rkm);
        if (!pre) rd_kafka_message_destroy(rkm);
        if (ing->fatal) break;
    }
    if (!ing->ra) {
        rs_ingest_job_t job = {ing, NULL};
        rs_pool_run(ing->pool, n, RS_INGEST_DECODE_CHUNK, rs_ingest_payloads,
                    &job);
    }
    int64_t at = rs_clock_mono_us() / 1000;
    /* Fetch pauses after the loop: ctl (read-ahead) may serve a rebalance,
     * which must find these messages in the merge, not half-pushed. */
    rs_ingest_pos_t pz[64];
    int npz = 0;
    for (int i = 0; i < n; i++) {
        rs_msg_t *m = ing->pm[i];
        rs_ingest_finish(ing, ing->rkms[i], m, ing->derr[i]);
        if (!ing->ra) rd_kafka_message_destroy(ing->rkms[i]);
        ing->rkms[i] = NULL;
        if (rs_imerge_push(ing->im, m, at)) {
            /* too much waits for the other topic of its task: stop
             * fetching this partition until half of it went out */
            if (npz == (int)RS_ARRAY_LEN(pz)) {
                for (int j = 0; j < npz; j++)
                    rs_ingest_merge_pause(ing, pz[j].topic, pz[j].partition);
                npz = 0;
            }
            pz[npz++] = (rs_ingest_pos_t){m->topic, m->partition, -1};
        }
    }
    rs_ingest_ra_done(ing); /* the read-ahead's messages: checks done */
    for (int j = 0; j < npz; j++)
        rs_ingest_merge_pause(ing, pz[j].topic, pz[j].partition);
    return n + ends;
}

/* rs_ingest_merge_reorder_log (ingest_int.h).  The stage's pattern
 * (cpstage.c): a new user sees one warning, not one every few seconds;
 * every line says which topics.max_task_idle would have merged them in
 * order (a wait costs every message while a topic is quiet). */
void rs_ingest_merge_reorder_log(rs_ingest_t *ing,
                                 const rs_imerge_stats_t *ms, int final) {
    char adv[256];
    int64_t now = rs_clock_mono_us();
    const char *topic = ms->reorder_topic == RS_MSG_TOPIC_LABELS
                            ? ing->conf.topic_labels
                            : ing->conf.topic_events;
    if (final) {
        if (!ms->reordered) return;
        rs_tmerge_late_advice("topics.max_task_idle", ms->reorder_late,
                              ms->reordered, adv, sizeof(adv));
        rs_warn("ingest", "%llu of %llu messages were handed to scoring out "
                "of time order within their task (topics.max_task_idle %lld "
                "ms; at most %lld ms late; the wait that would have merged "
                "them in order: %s; README, Scale-out)",
                (unsigned long long)ms->reordered,
                (unsigned long long)ms->merged,
                (long long)ing->conf.max_task_idle_ms,
                (long long)ms->reorder_late_max_ms, adv);
        return;
    }
    uint64_t n = 0;
    int64_t secs = 0;
    int what = rs_tmerge_log_step(&ing->reorder_log, ms->reorder_late,
                                  ms->reordered, now, RS_INGEST_REORDER_LOG_US,
                                  "topics.max_task_idle", adv, sizeof(adv),
                                  &n, &secs);
    if (what == 1)
        rs_warn("ingest", "a message on %s/%d was handed to scoring out of "
                "time order within its task (%llu so far): it was read "
                "%s%lld ms (ms clock) after the first of the newer messages "
                "of its task handed over ahead of it, %lld ms of event or "
                "label time behind them; topics.max_task_idle %lld ms, %lld "
                "ms would have merged it in order (every message waits up to "
                "that while the other topic of its task is quiet: README, "
                "Scale-out).  Label-aware entity features may differ from a "
                "replay's; counted in riskstream_task_merge_reordered_total, "
                "summed up every minute (info) and at the end",
                topic, (int)ms->reorder_part,
                (unsigned long long)ms->reordered,
                ms->reorder_late_min ? "at least " : "",
                (long long)ms->reorder_late_ms,
                (long long)ms->reorder_behind_ms,
                (long long)ing->conf.max_task_idle_ms,
                (long long)ms->reorder_late_ms + 1);
    else if (what == 2)
        rs_info("ingest", "%llu message(s) handed to scoring out of time "
                "order within their task in the last %lld s (%llu of %llu "
                "in all; topics.max_task_idle %lld ms); the wait that would "
                "have merged them in order: %s; the last on %s/%d, %lld ms "
                "late",
                (unsigned long long)n, (long long)secs,
                (unsigned long long)ms->reordered,
                (unsigned long long)ms->merged,
                (long long)ing->conf.max_task_idle_ms, adv, topic,
                (int)ms->reorder_part, (long long)ms->reorder_late_ms);
}

/* rs_ingest_poll with the task merge: read, merge, until something can
 * go, the poll times out or max went. */
static int rs_ingest_poll_merged(rs_ingest_t *ing, rs_msg_t *msgs,
                                 const rs_msg_t **refs, int max,
                                 int timeout_ms) {
    int n = 0, wait = 0;
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(timeout_ms, 0) * 1000;
    for (;;) {
        int drained = 0;
        rs_ingest_merge_read(ing, wait, max, &drained);
        int64_t now = rs_clock_mono_us();
        /* the idle clock: a partition at its end has been seen without
         * messages only up to the last time the queue was found empty */
        if (drained) ing->seen_ms = now / 1000;
        n += refs ? rs_imerge_pop_ref(ing->im, refs + n, max - n, ing->seen_ms)
                  : rs_imerge_pop(ing->im, msgs + n, max - n, ing->seen_ms);
        rs_imerge_resume(ing->im, 0, rs_ingest_merge_resume, ing);
        if (ing->nresets > 0) rs_ingest_apply_resets(ing);
        if (n >= max || ing->fatal) break;
        if (!drained) {
            wait = 0;
            continue;
        }
        if (n > 0) break;
        int64_t left = deadline - now;
        if (left <= 0) break;
        wait = (int)((left + 999) / 1000);
        rs_imerge_stats_t ms;
        rs_imerge_stats(ing->im, &ms);
        if (ing->conf.max_task_idle_ms > 0 && ms.held > 0 &&
            wait > RS_MERGE_SLICE_MS)
            wait = RS_MERGE_SLICE_MS; /* a held message's wait may end */
    }
    rs_imerge_stats_t ms;
    rs_imerge_stats(ing->im, &ms);
    RS_STORE(ing->c.merge_held, ms.held);
    RS_STORE(ing->c.merge_reordered, ms.reordered);
    /* task merge, continued (/metrics riskstream_task_merge_*) */
    RS_STORE(ing->c.merge_held_max, ms.held_max);
    RS_STORE(ing->c.merge_merged, ms.merged);
    RS_STORE(ing->c.merge_paused, ms.paused);
    RS_STORE(ing->c.merge_end_checks, ms.end_checks);
    RS_STORE(ing->c.merge_reorder_behind_ms, ms.reorder_behind_ms);
    RS_STORE(ing->c.merge_reorder_late_ms, ms.reorder_late_ms);
    if (ms.reordered > ing->reorder_log.logged)
        rs_ingest_merge_reorder_log(ing, &ms, 0);
    if (ing->fatal && n == 0) return -RS_ERR_KAFKA;
    return n;
}

/* What every poll does first: the previous poll_ref's messages go back
 * to the task merge (their slots may be reused from here), the DLQ
 * producer's callbacks, the arrays of the first poll, the read-ahead. */
static void rs_ingest_poll_begin(rs_ingest_t *ing, int max) {
    if (ing->im) rs_imerge_reclaim(ing->im);
    rd_kafka_poll(ing->dlq, 0); /* DLQ delivery reports */
    rs_ingest_dlq_drain(ing);
    if (max > ing->rkms_cap) { /* the first poll (cold) */
        free(ing->rkms);
        free(ing->derr);
        ing->rkms = rs_calloc((size_t)max, sizeof(*ing->rkms));
        ing->derr = rs_calloc((size_t)max, sizeof(*ing->derr));
        free(ing->pm);
        ing->pm = rs_calloc((size_t)max, sizeof(*ing->pm));
        ing->rkms_cap = max;
    }
    if (ing->conf.read_ahead && !ing->ra && !ing->ra_failed &&
        rs_ingest_ra_start(ing, (int)RS_MAX(max, ing->conf.batch_max)) !=
            RS_OK)
        ing->ra_failed = 1; /* logged; read here */
}

/* rs_ingest_poll without the task merge. */
static int rs_ingest_poll_plain(rs_ingest_t *ing, rs_msg_t *msgs, int max,
                                int timeout_ms) {
    int n = 0;
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(timeout_ms, 0) * 1000;
    ing->ngone = 0;
    while (n < max) {
        int wait = n == 0 ? rs_ingest_wait_left(deadline) : 0;
        rs_msg_t *pre;
        rs_err_t perr = RS_OK;
        int stalled;
        rd_kafka_message_t *rkm = rs_ingest_next(ing, wait, &pre, &perr,
                                                 &stalled);
        if (!rkm) {
            if (n > 0 || wait == 0 || stalled) break;
            continue;
        }
        if (pre && !rkm->err) { /* read ahead: decoded already */
            rs_imerge_copy(&msgs[n], pre);
            rs_ingest_head_state(ing, &msgs[n]);
            ing->derr[n] = perr;
            ing->rkms[n++] = rkm;
            continue;
        }
        if (!rkm->err && rs_ingest_head(ing, rkm, &msgs[n])) {
            ing->rkms[n++] = rkm; /* held until its payload is decoded */
            continue;
        }
        if (rkm->err) rs_ingest_consumer_error(ing, rkm);
        if (!pre) rd_kafka_message_destroy(rkm);
        if (ing->fatal) break;
    }
    /* Messages of partitions revoked or lost while this poll ran: the new
     * owner reads them (their offsets are not ours to store). */
    if (ing->ngone > 0) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            int gone = 0;
            for (int g = 0; g < ing->ngone && !gone; g++)
                gone = ing->gone[g].topic == msgs[i].topic &&
                       ing->gone[g].partition == msgs[i].partition;
            if (gone) {
                if (!ing->ra) rd_kafka_message_destroy(ing->rkms[i]);
                continue;
            }
            if (k != i) {
                rs_imerge_copy(&msgs[k], &msgs[i]);
                ing->rkms[k] = ing->rkms[i];
                ing->derr[k] = ing->derr[i];
            }
            k++;
        }
        if (k < n)
            rs_debug("ingest", "%d message(s) of partitions that left "
                     "during the poll dropped", n - k);
        n = k;
    }
    /* Payloads on the workers (in parallel; read ahead: decoded already),
     * then the checks in order. */
    if (!ing->ra) {
        rs_ingest_job_t job = {ing, msgs};
        rs_pool_run(ing->pool, n, RS_INGEST_DECODE_CHUNK, rs_ingest_payloads,
                    &job);
    }
    for (int i = 0; i < n; i++) {
        rs_ingest_finish(ing, ing->rkms[i], &msgs[i], ing->derr[i]);
        if (!ing->ra) rd_kafka_message_destroy(ing->rkms[i]);
        ing->rkms[i] = NULL;
    }
    rs_ingest_ra_done(ing); /* the read-ahead's messages: checks done */
    if (ing->nresets > 0) rs_ingest_apply_resets(ing);
    if (ing->fatal && n == 0) return -RS_ERR_KAFKA;
    return n;
}

int rs_ingest_poll(rs_ingest_t *ing, rs_msg_t *msgs, int max, int timeout_ms) {
    if (ing->fatal) return -RS_ERR_KAFKA;
    rs_ingest_poll_begin(ing, max);
    if (ing->im) return rs_ingest_poll_merged(ing, msgs, NULL, max, timeout_ms);
    return rs_ingest_poll_plain(ing, msgs, max, timeout_ms);
}

int rs_ingest_poll_ref(rs_ingest_t *ing, const rs_msg_t **out, int max,
                       int timeout_ms) {
    if (ing->fatal) return -RS_ERR_KAFKA;
    rs_ingest_poll_begin(ing, max);
    if (ing->im) return rs_ingest_poll_merged(ing, NULL, out, max, timeout_ms);
    /* without the task merge: decoded into the consumer's own array */
    if (max > ing->own_cap) { /* the first poll (cold) */
        free(ing->own);
        ing->own = rs_calloc((size_t)max, sizeof(*ing->own));
        ing->own_cap = max;
    }
    int n = rs_ingest_poll_plain(ing, ing->own, max, timeout_ms);
    for (int i = 0; i < n; i++) out[i] = &ing->own[i];
    return n;
}
