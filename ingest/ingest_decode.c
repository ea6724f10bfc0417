/* ingest_decode.c -- from a Kafka message to an rs_msg_t: the head, the
 * payload parsers (pure, any thread), the checks with state (replay flag,
 * event time bound) and the dead-letter producer for rejects.  Moved out
 * of ingest.c; see its design notes.
 *
 * Threads: the owner thread, except rs_ingest_payload (pure). */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/imerge.h"
#include "ingest/ingest_int.h"

/* Forget pending reject `slot` (message opaque: slot + 1, 0 = untracked). */
static void rs_ingest_pend_done(rs_ingest_t *ing, void *opaque) {
    intptr_t slot = (intptr_t)opaque - 1;
    ing->dlq_pending--;
    if (slot < 0) {
        ing->pend_untracked--;
        return;
    }
    ing->pend[slot].used = 0;
    ing->npend--;
    while (ing->pend_hi > 0 && !ing->pend[ing->pend_hi - 1].used)
        ing->pend_hi--;
}

/* DLQ delivery report, served by rd_kafka_poll on ing->dlq (owner
 * thread).  A failed delivery is copied (key, payload, headers, opaque)
 * to the retry list, which rs_ingest_dlq_drain() produces again: a reject
 * is never silently dropped. */
void rs_ingest_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                         void *opaque) {
    rs_ingest_t *ing = opaque;
    RS_UNUSED(rk);
    if (!rkm->err) {
        RS_INC(ing->c.dlq_delivered);
        rs_ingest_pend_done(ing, rkm->_private);
        return;
    }
    RS_INC(ing->c.dlq_failed);
    rs_dlq_retry_t *re = malloc(sizeof(*re) + rkm->key_len + rkm->len);
    if (!re) {
        RS_INC(ing->c.dlq_lost);
        rs_ingest_pend_done(ing, rkm->_private);
        rs_error("ingest", "dead-letter copy LOST: delivery failed (%s) and "
                 "no memory to retry", rd_kafka_err2str(rkm->err));
        return;
    }
    rd_kafka_headers_t *hdrs = NULL;
    re->next = NULL;
    re->hdrs = rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR
                   ? rd_kafka_headers_copy(hdrs) : NULL;
    re->opaque = rkm->_private;
    re->klen = rkm->key_len;
    re->len = rkm->len;
    if (rkm->key_len) memcpy(re->data, rkm->key, rkm->key_len);
    if (rkm->len) memcpy(re->data + rkm->key_len, rkm->payload, rkm->len);
    if (ing->retry_tail) ing->retry_tail->next = re;
    else ing->retry_head = re;
    ing->retry_tail = re;
    rs_warn("ingest", "dead-letter delivery failed (%s): will retry",
            rd_kafka_err2str(rkm->err));
}

/* Produce failed dead letters again, stopping at the first refusal. */
void rs_ingest_dlq_drain(rs_ingest_t *ing) {
    while (ing->retry_head) {
        rs_dlq_retry_t *re = ing->retry_head;
        rd_kafka_headers_t *hdrs = re->hdrs ? rd_kafka_headers_copy(re->hdrs)
                                            : NULL;
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            ing->dlq, RD_KAFKA_V_TOPIC(ing->conf.topic_dlq),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(re->data, re->klen),
            RD_KAFKA_V_VALUE(re->data + re->klen, re->len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(re->opaque),
            RD_KAFKA_V_END);
        if (kerr) {
            if (hdrs) rd_kafka_headers_destroy(hdrs);
            int64_t now = rs_clock_mono_us();
            if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL &&
                now - ing->retry_warn_us >= 1000000) {
                ing->retry_warn_us = now;
                rs_error("ingest", "dead-letter retry: %s (will retry)",
                         rd_kafka_err2str(kerr));
            }
            return;
        }
        ing->retry_head = re->next;
        if (!ing->retry_head) ing->retry_tail = NULL;
        if (re->hdrs) rd_kafka_headers_destroy(re->hdrs);
        free(re);
    }
}

/* Serve DLQ delivery reports and retries until `done(ing, arg)` or the
 * timeout.  Returns done's final value. */
int rs_ingest_dlq_wait(rs_ingest_t *ing, int timeout_ms,
                       int (*done)(const rs_ingest_t *, const void *),
                       const void *arg) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (!done(ing, arg)) {
        if (rs_clock_mono_us() > deadline) return 0;
        rd_kafka_poll(ing->dlq, 10);
        rs_ingest_dlq_drain(ing);
    }
    return 1;
}

int rs_ingest_dlq_idle(const rs_ingest_t *ing, const void *arg) {
    RS_UNUSED(arg);
    return ing->dlq_pending == 0;
}

static int rs_ingest_dlq_has_slot(const rs_ingest_t *ing, const void *arg) {
    RS_UNUSED(arg);
    return ing->npend < RS_DLQ_PEND_MAX;
}

/* ------------------------------------------------------------------- poll */

static void rs_ingest_warn_reject(rs_ingest_t *ing, const char *src,
                                  const char *reason) {
    int64_t now = rs_clock_mono_us();
    if (ing->warn_last_us && now - ing->warn_last_us < 1000000) {
        ing->warn_suppressed++;
        return;
    }
    if (ing->warn_suppressed)
        rs_warn("ingest", "rejected %s: %s (and %llu more since the last "
                "report)", src, reason,
                (unsigned long long)ing->warn_suppressed);
    else
        rs_warn("ingest", "rejected %s: %s", src, reason);
    ing->warn_last_us = now;
    ing->warn_suppressed = 0;
}

/* Send a rejected message to the dead-letter topic: original key, payload
 * and headers plus rs-error and rs-source.  Retries while the local queue
 * is full; a payload too big for the DLQ goes without its body. */
static void rs_ingest_dead_letter(rs_ingest_t *ing,
                                  const rd_kafka_message_t *rkm, int topic,
                                  const char *src, const char *reason) {
    /* Track the reject until the DLQ acknowledges it. */
    intptr_t slot = -1;
    rs_ingest_dlq_wait(ing, 1000, rs_ingest_dlq_has_slot, NULL);
    for (int i = 0; i < RS_DLQ_PEND_MAX; i++)
        if (!ing->pend[i].used) {
            slot = i;
            break;
        }
    const void *payload = rkm->payload;
    size_t len = rkm->len;
    char nbuf[32];
    for (int attempt = 0; attempt < 100; attempt++) {
        rd_kafka_headers_t *orig = NULL, *hdrs;
        if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = rd_kafka_headers_copy(orig);
        else
            hdrs = rd_kafka_headers_new(2);
        rd_kafka_header_add(hdrs, "rs-error", -1, reason, -1);
        rd_kafka_header_add(hdrs, "rs-source", -1, src, -1);
        if (!payload && len) {
            snprintf(nbuf, sizeof(nbuf), "%zu", len);
            rd_kafka_header_add(hdrs, "rs-payload-dropped", -1, nbuf, -1);
        }
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            ing->dlq, RD_KAFKA_V_TOPIC(ing->conf.topic_dlq),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
            RD_KAFKA_V_VALUE((void *)payload, payload ? len : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(slot + 1)),
            RD_KAFKA_V_END);
        if (!kerr) {
            ing->dlq_pending++;
            if (slot < 0) {
                ing->pend_untracked++;
                return;
            }
            ing->pend[slot] = (rs_dlq_pend_t){1, topic, rkm->partition,
                                              rkm->offset};
            ing->npend++;
            if (slot + 1 > ing->pend_hi) ing->pend_hi = (int)slot + 1;
            return;
        }
        rd_kafka_headers_destroy(hdrs);
        if (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && payload) {
            payload = NULL; /* keep len for the header */
            continue;
        }
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            RS_INC(ing->c.dlq_lost);
            rs_error("ingest", "dead-letter %s LOST: %s", src,
                     rd_kafka_err2str(kerr));
            return;
        }
        rd_kafka_poll(ing->dlq, 100); /* backpressure */
    }
    RS_INC(ing->c.dlq_lost);
    rs_error("ingest", "dead-letter %s LOST: DLQ queue full for 10 s", src);
}

/* 1 if (topic, partition, offset) is below an active replay bound; a
 * message at or past its bound ends the replay of its partition. */
static int rs_ingest_replay_check(rs_ingest_t *ing, int topic,
                                  int32_t partition, int64_t offset) {
    for (int k = 0; k < ing->replay_cap; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic != topic || r->partition != partition) continue;
        if (offset < r->offset) return 1;
        r->topic = -1;
        ing->nreplay--;
        rs_info("ingest", "%s/%d: replay over at offset %lld",
                rd_kafka_topic_name(ing->rkt[topic]), (int)partition,
                (long long)offset);
        return 0;
    }
    return 0;
}

/* The event time bound (see ingest.h): RS_ERR_INVALID with m->reason if
 * m->ev is dated more than future_skew ahead of max(wall clock, the
 * partition's newest accepted event time); else the partition's watermark
 * moves on.  No allocation. */
static rs_err_t rs_ingest_time_check(rs_ingest_t *ing, rs_msg_t *m) {
    int64_t skew = ing->conf.future_skew_ms, t = m->ev.event_time_ms;
    int64_t *wm = m->partition >= 0 && m->partition < RS_INGEST_WM_PARTS
                      ? &ing->wm[m->partition] : NULL;
    if (skew <= 0) return RS_OK;
    int64_t wall = rs_clock_wall_ms();
    int64_t ref = wm && *wm > wall ? *wm : wall;
    if (t > ref + skew) {
        char ahead[32], lim[32];
        double d = (double)(t - ref);
        if (d >= 2 * 86400000.0)
            snprintf(ahead, sizeof(ahead), "%.1f days", d / 86400000.0);
        else if (d >= 2 * 3600000.0)
            snprintf(ahead, sizeof(ahead), "%.1f h", d / 3600000.0);
        else
            snprintf(ahead, sizeof(ahead), "%.1f s", d / 1000.0);
        rs_duration_fmt(skew, lim, sizeof(lim));
        RS_INC(ing->c.future);
        return rs_errf(m->reason, sizeof(m->reason), RS_ERR_INVALID,
                       "field 'event_time_ms': %lld is %s ahead of the %s "
                       "(topics.future_skew: %s)", (long long)t, ahead,
                       ref > wall ? "partition's newest event time"
                                  : "wall clock", lim);
    }
    if (wm && t > *wm) *wm = t;
    return RS_OK;
}

/* Decoding is three steps so that the middle one, the payload parsers
 * (pure functions, no I/O, no shared state), can run on the service's
 * workers (rs_ingest_set_pool): the head of each message in poll order,
 * the payloads in parallel, then the checks with state (time bound,
 * counters, dead letters) in poll order again.  The result is that of
 * decoding one message after another. */

/* Step 1: the message's head into *m.  Returns 1 if it is for us, 0 if
 * not (another topic). */
int rs_ingest_head(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                   rs_msg_t *m) {
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    int topic;
    if (!strcmp(tname, ing->conf.topic_events)) topic = RS_MSG_TOPIC_EVENTS;
    else if (!strcmp(tname, ing->conf.topic_labels)) topic = RS_MSG_TOPIC_LABELS;
    else {
        rs_debug("ingest", "ignoring message from topic '%s'", tname);
        return 0;
    }
    RS_INC(ing->c.consumed);
    m->topic = topic;
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->produced_ms = rd_kafka_message_timestamp(rkm, NULL);
    m->received_us = rs_clock_mono_us();
    m->reason[0] = '\0';
    m->replay = ing->nreplay > 0 &&
                rs_ingest_replay_check(ing, topic, rkm->partition, rkm->offset);
    return 1;
}

void rs_ingest_head_state(rs_ingest_t *ing, rs_msg_t *m) {
    RS_INC(ing->c.consumed);
    m->replay = ing->nreplay > 0 &&
                rs_ingest_replay_check(ing, m->topic, m->partition, m->offset);
}

/* Step 2: the payload of a message whose head is in *m.  Pure: any
 * thread, one message per call. */
rs_err_t rs_ingest_payload(const rs_ingest_conf_t *conf,
                           const rd_kafka_message_t *rkm,
                           rs_msg_t *m) {
    rs_err_t err;
    if (!rkm->payload || rkm->len == 0) {
        err = rs_errf(m->reason, sizeof(m->reason), RS_ERR_INVALID,
                      "empty payload");
    } else if (rkm->len > RS_MSG_MAX) {
        err = rs_errf(m->reason, sizeof(m->reason), RS_ERR_TOOBIG,
                      "message of %zu bytes exceeds the %d byte limit",
                      rkm->len, RS_MSG_MAX);
    } else if (m->topic == RS_MSG_TOPIC_EVENTS) {
        err = rs_event_decode((rs_format_t)conf->events_format,
                              rkm->payload, rkm->len, &m->ev, m->reason,
                              sizeof(m->reason));
        m->kind = RS_MSG_EVENT;
    } else {
        err = rs_label_decode((rs_format_t)conf->labels_format,
                              rkm->payload, rkm->len, &m->lb, m->reason,
                              sizeof(m->reason));
        m->kind = RS_MSG_LABEL;
    }
    return err;
}

/* Step 3: the checks with state, in poll order; a reject is counted,
 * logged and dead-lettered here. */
void rs_ingest_finish(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                      rs_msg_t *m, rs_err_t err) {
    if (err == RS_OK && m->kind == RS_MSG_EVENT)
        err = rs_ingest_time_check(ing, m);
    if (err == RS_OK) {
        if (m->kind == RS_MSG_EVENT) RS_INC(ing->c.events);
        else RS_INC(ing->c.labels);
        return;
    }
    if (!m->reason[0]) rs_strlcpy(m->reason, rs_err_str(err), sizeof(m->reason));
    m->kind = RS_MSG_REJECT;
    RS_INC(ing->c.rejected);
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    char src[300];
    snprintf(src, sizeof(src), "%s/%d/%lld", tname, (int)rkm->partition,
             (long long)rkm->offset);
    if (m->replay) {
        /* Dead-lettered when it was first read (its offset was committed
         * after the DLQ acknowledged it): not again. */
        rs_debug("ingest", "replayed reject %s: %s", src, m->reason);
        return;
    }
    rs_ingest_warn_reject(ing, src, m->reason);
    rs_ingest_dead_letter(ing, rkm, m->topic, src, m->reason);
}
