/* sink_kafka.c -- scores and alerts to Kafka, with batch acknowledgement.
 *
 * Batch tracking: a FIFO ring of in-flight batches {seq, outstanding,
 * ended}, ordered by seq.  Each message carries its batch's ring slot in
 * the message opaque (tagged with bit 0 set), or, once it has failed and
 * been re-produced, a pointer to its retry record (bit 0 clear).  A slot is
 * only reused after its batch is fully acknowledged, so a delivery report
 * always finds its batch.  rs_sink_kafka_acked() pops finished batches
 * from the front.
 *
 * Failures: the delivery report copies the failed message (key + payload)
 * into a retry record (cold path: malloc) and appends it to a list that
 * rs_sink_kafka_poll / publish / flush produce again.  The batch keeps its
 * outstanding count until the copy is delivered.
 *
 * Transactional mode (rs_sink_kafka_new_txn): no retry list -- a failed
 * message makes the transaction abortable (librdkafka refuses to commit
 * it).  Instead every message of the open transaction is also copied into
 * `kept` (one growing buffer, reused: no allocation once it is big enough
 * for the largest transaction), and the first rs_sink_kafka_txn_begin()
 * after an abort produces those copies again, into their original batch
 * slots.  So an abort followed by begin + commit of the same positions
 * publishes exactly what the aborted transaction would have, without the
 * caller re-processing anything.  A batch leaves the ring only once it is
 * delivered AND its transaction committed (or discarded): txn_done_seq.
 * Every delivery report (success or failure) decrements `outstanding`;
 * the commit decides, not the report.
 *
 * One more topic may share the transactions (rs_sink_kafka_txn_topic: the
 * state changelog): its messages carry the sink itself as opaque (no
 * batch slot), are kept like the others (kind 2, slot = partition) and
 * their delivery reports go to the owner's callback.
 *
 * Zero-copy (rs_sink_kafka_set_hold, non-transactional only): the
 * records of rs_sink_kafka_publish_batch are produced without
 * RD_KAFKA_MSG_F_COPY -- librdkafka reads the caller's bytes until the
 * message's delivery report -- so the caller keeps them until
 * rs_sink_kafka_acked() passes their batch.  That holds on every path: a
 * batch is acknowledged only when each of its messages has a successful
 * report; a failed one is copied in its report (retry record, above)
 * while the batch stays unacknowledged, and one refused synchronously is
 * copied at once; destroy serves every report (flush, then purge) before
 * it returns.  Keys are always copied by librdkafka; alert payloads of an
 * alert_fn and the single-record calls (which encode into the sink's own
 * buffer) are still copied.  A transactional sink copies every message
 * anyway (`kept`, for the redo after an abort), so it never holds.
 *
 * Threads: one owner thread; the delivery report callback runs inside
 * rd_kafka_poll/rd_kafka_flush on that thread, so the ring and the retry
 * list need no lock.  Counters are relaxed atomics for rs_sink_kafka_stats.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "ingest/ingest.h"
#include "scoring/sink.h"

#define RS_SINK_RING 4096        /* batches in flight                   */
#define RS_SINK_BLOCK_MS 1000    /* publish waits this long on a full queue */
#define RS_SINK_CLOSE_MS 10000   /* destroy flushes this long           */

typedef struct rs_sink_batch_s {
    uint64_t seq;
    int64_t outstanding;   /* messages queued and not yet delivered */
    int ended;             /* rs_sink_kafka_batch_end covered it    */
} rs_sink_batch_t;

/* A message kept for a possible re-produce after an abort; followed by
 * [klen] key then [len] payload, the record padded to 8 bytes. */
typedef struct rs_sink_kept_s {
    uint32_t slot;         /* ring slot of its batch                */
    uint32_t alert;        /* 1: alerts topic, 2: the txn topic (slot
                            * is then the partition)                */
    uint32_t klen, len;
} rs_sink_kept_t;

typedef struct rs_sink_retry_s {
    struct rs_sink_retry_s *next;
    int alert;             /* 1: alerts topic, 0: scores topic      */
    uint32_t slot;         /* ring slot of its batch                */
    uint64_t retries;
    size_t klen, len;
    char data[];           /* [klen] key then [len] payload         */
} rs_sink_retry_t;

struct rs_sink_kafka_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt_scores;
    rd_kafka_topic_t *rkt_alerts;   /* NULL: alerts disabled */
    rs_format_t fmt;
    uint8_t *buf;                   /* [RS_ENCODE_MAX] encode buffer */
    /* rs_sink_kafka_publish_batch: grown to the largest batch, reused */
    rd_kafka_message_t *rkms;       /* [pub_cap] the scores of a batch */
    rd_kafka_message_t *arkms;      /* [pub_cap] its alerts            */
    int pub_cap;
    rs_sink_batch_t *ring;          /* [RS_SINK_RING]                */
    uint32_t head, cnt;             /* FIFO of in-flight batches     */
    uint64_t last_seq;              /* highest seq seen              */
    uint64_t last_ended;            /* highest seq ended             */
    uint64_t acked;                 /* highest fully delivered seq   */
    rs_sink_retry_t *retry_head, *retry_tail;
    int fatal;
    int closing;                    /* destroy: purging, no new copies */
    int hold;                       /* zero-copy records (set_hold)    */
    /* transactional mode */
    int txn;                        /* 1: transactional producer        */
    int txn_open;                   /* a transaction is open            */
    int txn_abortable;              /* it can only be aborted           */
    int txn_aborting;               /* abort running: failures expected */
    int txn_offsets_sent;           /* offsets are in the open txn      */
    uint64_t txn_done_seq;          /* batches <= it committed/discarded */
    rd_kafka_topic_t *rkt_txn;      /* rs_sink_kafka_txn_topic (or NULL) */
    rs_sink_txn_dr_fn *txn_dr;      /* its delivery reports             */
    void *txn_dr_opaque;
    uint8_t *kept;                  /* [kept_cap] rs_sink_kept_t records */
    size_t kept_len, kept_cap;
    uint64_t kept_n;                /* records in kept                  */
    int64_t warn_last_us;           /* DR failure log rate limit       */
    int64_t retry_warn_us;          /* re-produce error log rate limit */
    struct {
        _Atomic uint64_t published, alerts, delivered, failed, retries,
            queue_full, acked_seq, txn_commits, txn_aborts;
        _Atomic int64_t inflight;
    } c;
};

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define RS_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static rs_sink_batch_t *rs_sink_slot(rs_sink_kafka_t *sink, uint32_t slot) {
    return &sink->ring[slot % RS_SINK_RING];
}

static void rs_sink_check_fatal(rs_sink_kafka_t *sink) {
    char fbuf[512];
    if (sink->fatal) return;
    if (rd_kafka_fatal_error(sink->rk, fbuf, sizeof(fbuf))) {
        sink->fatal = 1;
        rs_error("sink", "kafka producer fatal error: %s", fbuf);
    }
}

/* Delivery report: served on the owner thread. */
static void rs_sink_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                          void *opaque) {
    rs_sink_kafka_t *sink = opaque;
    uintptr_t op = (uintptr_t)rkm->_private;
    if (op == (uintptr_t)sink) { /* the txn topic: in no batch */
        if (sink->txn_dr)
            sink->txn_dr(sink->txn_dr_opaque, rkm->partition, rkm->offset,
                         rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR);
        if (!rkm->err || !sink->txn_open || sink->txn_aborting ||
            sink->closing)
            return;
        sink->txn_abortable = 1;
        int64_t now = rs_clock_mono_us();
        if (now - sink->warn_last_us >= 1000000) {
            sink->warn_last_us = now;
            rs_warn("sink", "delivery to %s [%d] failed: %s; the transaction "
                    "must be aborted and redone", rd_kafka_topic_name(rkm->rkt),
                    (int)rkm->partition, rd_kafka_err2str(rkm->err));
        }
        return;
    }
    rs_sink_retry_t *re = (op & 1u) ? NULL : (rs_sink_retry_t *)op;
    uint32_t slot = re ? re->slot : (uint32_t)(op >> 1);

    if (sink->txn) {
        /* Delivered or not, the commit decides; a failure dooms the open
         * transaction (the kept copy is produced again after the abort). */
        RS_ADD(sink->c.inflight, -1);
        rs_sink_slot(sink, slot)->outstanding--;
        if (!rkm->err) {
            RS_INC(sink->c.delivered);
            return;
        }
        RS_INC(sink->c.failed);
        if (!sink->txn_open || sink->txn_aborting || sink->closing) return;
        sink->txn_abortable = 1;
        int64_t now = rs_clock_mono_us();
        if (now - sink->warn_last_us >= 1000000) {
            sink->warn_last_us = now;
            rs_warn("sink", "delivery to %s [%d] failed: %s; the transaction "
                    "must be aborted (its messages are kept and produced "
                    "again in the next one)", rd_kafka_topic_name(rkm->rkt),
                    (int)rkm->partition, rd_kafka_err2str(rkm->err));
        }
        return;
    }

    if (!rkm->err) {
        RS_INC(sink->c.delivered);
        RS_ADD(sink->c.inflight, -1);
        rs_sink_slot(sink, slot)->outstanding--;
        free(re);
        return;
    }
    RS_INC(sink->c.failed);
    if (sink->closing) {
        /* Purged at destroy: keep only the records we must free. */
        if (re) {
            re->next = sink->retry_head;
            sink->retry_head = re;
            if (!sink->retry_tail) sink->retry_tail = re;
        }
        return;
    }
    if (!re) {
        re = malloc(sizeof(*re) + rkm->key_len + rkm->len);
        if (!re) {
            /* Out of memory in the failure path: give up loudly. */
            rs_error("sink", "delivery failed (%s) and no memory to retry: "
                     "batch stays unacknowledged", rd_kafka_err2str(rkm->err));
            return;
        }
        re->alert = sink->rkt_alerts &&
                    !strcmp(rd_kafka_topic_name(rkm->rkt),
                            rd_kafka_topic_name(sink->rkt_alerts));
        re->slot = slot;
        re->retries = 0;
        re->klen = rkm->key_len;
        re->len = rkm->len;
        if (rkm->key_len) memcpy(re->data, rkm->key, rkm->key_len);
        if (rkm->len) memcpy(re->data + rkm->key_len, rkm->payload, rkm->len);
    }
    re->retries++;
    re->next = NULL;
    if (sink->retry_tail) sink->retry_tail->next = re;
    else sink->retry_head = re;
    sink->retry_tail = re;

    int64_t now = rs_clock_mono_us();
    if (now - sink->warn_last_us >= 1000000) {
        sink->warn_last_us = now;
        rs_warn("sink", "delivery to %s [%d] failed: %s; producing again "
                "(retry %llu, %llu failures so far)",
                rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                rd_kafka_err2str(rkm->err), (unsigned long long)re->retries,
                (unsigned long long)RS_LOAD(sink->c.failed));
    }
    RS_UNUSED(rk);
}

static uint64_t rs_sink_retry_count(const rs_sink_kafka_t *sink) {
    uint64_t n = 0;
    for (const rs_sink_retry_t *re = sink->retry_head; re; re = re->next) n++;
    return n;
}

/* Keep a copy of a message librdkafka refused synchronously (a transient
 * topic/partition error, or a full queue for the alert copy): it goes to
 * the back of the retry list and counts as outstanding in its batch, so the
 * batch is not acknowledged -- and its input offsets not stored -- until it
 * is delivered.  Cold path (malloc). */
static void rs_sink_retry_push(rs_sink_kafka_t *sink, int alert, uint32_t slot,
                               const char *key, const void *buf, size_t len) {
    size_t klen = strlen(key);
    rs_sink_retry_t *re = rs_malloc(sizeof(*re) + klen + len);
    re->next = NULL;
    re->alert = alert;
    re->slot = slot;
    re->retries = 0;
    re->klen = klen;
    re->len = len;
    memcpy(re->data, key, klen);
    memcpy(re->data + klen, buf, len);
    if (sink->retry_tail) sink->retry_tail->next = re;
    else sink->retry_head = re;
    sink->retry_tail = re;
}

/* Produce the retry list again, stopping at the first full queue. */
static void rs_sink_retry_drain(rs_sink_kafka_t *sink) {
    while (sink->retry_head) {
        rs_sink_retry_t *re = sink->retry_head;
        rd_kafka_topic_t *rkt = re->alert ? sink->rkt_alerts : sink->rkt_scores;
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            sink->rk, RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(re->data, re->klen),
            RD_KAFKA_V_VALUE(re->data + re->klen, re->len),
            RD_KAFKA_V_OPAQUE(re), RD_KAFKA_V_END);
        if (kerr) {
            if (kerr == RD_KAFKA_RESP_ERR__FATAL) rs_sink_check_fatal(sink);
            else if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                int64_t now = rs_clock_mono_us();
                if (now - sink->retry_warn_us >= 1000000) {
                    sink->retry_warn_us = now;
                    rs_error("sink", "re-produce to %s: %s (%llu message(s) "
                             "waiting)", rd_kafka_topic_name(rkt),
                             rd_kafka_err2str(kerr),
                             (unsigned long long)rs_sink_retry_count(sink));
                }
            }
            return; /* keep it; try again on the next poll */
        }
        RS_INC(sink->c.retries);
        sink->retry_head = re->next;
        if (!sink->retry_head) sink->retry_tail = NULL;
    }
}

#define RS_SINK_TXN_INIT_MS 30000 /* init_transactions, all attempts */

/* Classify a transactional API error (see sink.h), log it, fill errstr,
 * free it. */
static rs_err_t rs_sink_txn_fail(rs_sink_kafka_t *sink,
                                 rd_kafka_error_t *error, const char *what,
                                 char *errstr, size_t errstr_size) {
    rs_err_t err;
    const char *cls;
    if (rd_kafka_error_is_fatal(error)) {
        sink->fatal = 1;
        err = RS_ERR_KAFKA;
        cls = "fatal: the producer is unusable";
    } else if (rd_kafka_error_txn_requires_abort(error)) {
        sink->txn_abortable = 1;
        err = RS_ERR_AGAIN;
        cls = "abortable: abort the transaction and redo it";
    } else if (rd_kafka_error_is_retriable(error)) {
        err = RS_ERR_TIMEOUT;
        cls = "retriable: call again";
    } else if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE) {
        err = RS_ERR_STATE;
        cls = "invalid state";
    } else {
        err = RS_ERR_KAFKA;
        cls = "error";
    }
    rs_log(err == RS_ERR_TIMEOUT ? RS_LOG_WARN : RS_LOG_ERROR, "sink",
           "%s: %s [%s] (%s)", what, rd_kafka_error_string(error),
           rd_kafka_error_name(error), cls);
    rs_errf(errstr, errstr_size, err, "%s: %s (%s)", what,
            rd_kafka_error_string(error), cls);
    rd_kafka_error_destroy(error);
    return err;
}

/* Create the producer; transactional (and initialised: fences older
 * instances with the same id) if txn_id is non-NULL. */
static rs_sink_kafka_t *rs_sink_kafka_create(const rs_kv_t *props,
                                             const char *bootstrap,
                                             const char *topic_scores,
                                             const char *topic_alerts,
                                             rs_format_t fmt,
                                             const char *txn_id,
                                             char *errstr,
                                             size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
    };
    rs_sink_kafka_t *sink = NULL;
    rd_kafka_conf_t *kconf = NULL;
    char kerr[512];

    if (!topic_scores || !*topic_scores) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "kafka sink: no scores topic");
        return NULL;
    }
    sink = rs_calloc(1, sizeof(*sink));
    sink->fmt = fmt;
    sink->buf = rs_malloc(RS_ENCODE_MAX);
    sink->ring = rs_calloc(RS_SINK_RING, sizeof(*sink->ring));
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, props, bootstrap, defaults,
                                (int)RS_ARRAY_LEN(defaults), &kconf, errstr,
                                errstr_size) != RS_OK)
        goto fail;
    size_t tlen = 0; /* value size with its NUL: > 1 if set */
    if (rd_kafka_conf_get(kconf, "transactional.id", NULL, &tlen) ==
            RD_KAFKA_CONF_OK && tlen > 1) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "kafka sink: kafka.transactional.id must not be set: "
                "exactly-once mode gives the sink its own");
        goto fail;
    }
    if (txn_id) {
        sink->txn = 1;
        if (rd_kafka_conf_set(kconf, "transactional.id", txn_id, kerr,
                              sizeof(kerr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(kconf, "enable.idempotence", "true", kerr,
                              sizeof(kerr)) != RD_KAFKA_CONF_OK) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "kafka sink: %s",
                    kerr);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(kconf, sink);
    rd_kafka_conf_set_dr_msg_cb(kconf, rs_sink_dr_cb);
    sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, kerr, sizeof(kerr));
    if (!sink->rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "kafka sink: %s", kerr);
        goto fail;
    }
    kconf = NULL;
    sink->rkt_scores = rd_kafka_topic_new(sink->rk, topic_scores, NULL);
    if (topic_alerts && *topic_alerts)
        sink->rkt_alerts = rd_kafka_topic_new(sink->rk, topic_alerts, NULL);
    if (!sink->rkt_scores || (topic_alerts && *topic_alerts &&
                              !sink->rkt_alerts)) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "kafka sink: topic: %s",
                rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (txn_id) {
        /* Registers the id with its coordinator, aborts what an older
         * instance left open and fences that instance. */
        int64_t deadline = rs_clock_mono_us() + RS_SINK_TXN_INIT_MS * 1000LL;
        for (;;) {
            int64_t left = (deadline - rs_clock_mono_us()) / 1000;
            rd_kafka_error_t *error =
                rd_kafka_init_transactions(sink->rk, (int)RS_MAX(left, 1));
            if (!error) break;
            if (rd_kafka_error_is_retriable(error) && left > 0) {
                rs_warn("sink", "init transactions: %s (retrying)",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                rd_kafka_poll(sink->rk, 100); /* no busy loop */
                continue;
            }
            rs_sink_txn_fail(sink, error, "kafka sink: init transactions",
                             errstr, errstr_size);
            goto fail;
        }
        sink->kept_cap = 64 * 1024;
        sink->kept = rs_malloc(sink->kept_cap);
    }
    rs_info("sink", "scores to '%s'%s%s%s (%s)%s%s%s", topic_scores,
            sink->rkt_alerts ? ", alerts to '" : "",
            sink->rkt_alerts ? topic_alerts : "",
            sink->rkt_alerts ? "'" : "",
            fmt == RS_FORMAT_PROTOBUF ? "protobuf" : "json",
            txn_id ? ", transactional (id '" : "", txn_id ? txn_id : "",
            txn_id ? "')" : "");
    return sink;
fail:
    if (kconf) rd_kafka_conf_destroy(kconf);
    rs_sink_kafka_destroy(sink);
    return NULL;
}

rs_sink_kafka_t *rs_sink_kafka_new(const rs_kv_t *props, const char *bootstrap,
                                   const char *topic_scores,
                                   const char *topic_alerts, rs_format_t fmt,
                                   char *errstr, size_t errstr_size) {
    return rs_sink_kafka_create(props, bootstrap, topic_scores, topic_alerts,
                                fmt, NULL, errstr, errstr_size);
}

rs_sink_kafka_t *rs_sink_kafka_new_txn(const rs_kv_t *props,
                                       const char *bootstrap,
                                       const char *topic_scores,
                                       const char *topic_alerts,
                                       rs_format_t fmt,
                                       const char *transactional_id,
                                       char *errstr, size_t errstr_size) {
    if (!transactional_id || !*transactional_id) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "kafka sink: empty transactional id");
        return NULL;
    }
    return rs_sink_kafka_create(props, bootstrap, topic_scores, topic_alerts,
                                fmt, transactional_id, errstr, errstr_size);
}

/* Slot of batch `seq`, opening a new one at the back if needed.
 * RS_ERR_STATE if seq is out of order, RS_ERR_AGAIN if the ring stays
 * full. */
static rs_err_t rs_sink_batch_slot(rs_sink_kafka_t *sink, uint64_t seq,
                                   uint32_t *slot) {
    if (seq == 0 || seq <= sink->last_ended || seq < sink->last_seq) {
        rs_error("sink", "batch %llu out of order (last %llu, ended %llu)",
                 (unsigned long long)seq, (unsigned long long)sink->last_seq,
                 (unsigned long long)sink->last_ended);
        return RS_ERR_STATE;
    }
    if (sink->cnt > 0) {
        uint32_t tail = sink->head + sink->cnt - 1;
        if (rs_sink_slot(sink, tail)->seq == seq) {
            *slot = tail % RS_SINK_RING;
            return RS_OK;
        }
    }
    int64_t deadline = rs_clock_mono_us() + RS_SINK_BLOCK_MS * 1000;
    while (sink->cnt == RS_SINK_RING) {
        rd_kafka_poll(sink->rk, 10);
        rs_sink_retry_drain(sink);
        rs_sink_kafka_acked(sink);
        if (rs_clock_mono_us() > deadline) return RS_ERR_AGAIN;
    }
    uint32_t idx = (sink->head + sink->cnt) % RS_SINK_RING;
    sink->ring[idx] = (rs_sink_batch_t){.seq = seq};
    sink->cnt++;
    sink->last_seq = seq;
    *slot = idx;
    return RS_OK;
}

/* Count and log (rate-limited) a message refused synchronously. */
static void rs_sink_refused(rs_sink_kafka_t *sink, rd_kafka_topic_t *rkt,
                            rd_kafka_resp_err_t kerr) {
    RS_INC(sink->c.failed);
    int64_t now = rs_clock_mono_us();
    if (now - sink->retry_warn_us >= 1000000) {
        sink->retry_warn_us = now;
        rs_warn("sink", "produce to %s refused (%s): kept for retry",
                rd_kafka_topic_name(rkt), rd_kafka_err2str(kerr));
    }
}

/* Produce msgs[0..m) to rkt in one call (rd_kafka_produce_batch: the
 * partitioner per message as rd_kafka_producev, but one clock read, one
 * topic lock and one call for the run), in array order, so the order per
 * partition is the order of msgs.  `copy`: librdkafka copies each payload
 * (RD_KAFKA_MSG_F_COPY) and the caller's buffers are not referenced after
 * the call; 0 (zero-copy, sink->hold): each payload is read until its
 * delivery report.  Keys are always copied.  A full queue refuses the rest of the run (librdkafka stops at the
 * first full queue): serve delivery reports and try the rest again, up to
 * *deadline (0: not set yet; set RS_SINK_BLOCK_MS past the first full
 * queue, so a run that finds room reads no clock).  Returns how many of
 * msgs were handed over: each queued (err 0) or refused for a reason of
 * its own (err set, not QUEUE_FULL); the rest, msgs[ret..m), were refused
 * for a full queue (or all of them for a fatal error, err __FATAL). */
static int rs_sink_produce_run(rs_sink_kafka_t *sink, rd_kafka_topic_t *rkt,
                               rd_kafka_message_t *msgs, int m, int copy,
                               int64_t *deadline) {
    int done = 0;
    while (done < m) {
        rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA,
                               copy ? RD_KAFKA_MSG_F_COPY : 0, msgs + done,
                               m - done);
        while (done < m && msgs[done].err != RD_KAFKA_RESP_ERR__QUEUE_FULL &&
               msgs[done].err != RD_KAFKA_RESP_ERR__FATAL)
            done++;
        if (done == m || msgs[done].err == RD_KAFKA_RESP_ERR__FATAL)
            return done;
        RS_INC(sink->c.queue_full);
        int64_t now = rs_clock_mono_us();
        if (!*deadline) *deadline = now + RS_SINK_BLOCK_MS * 1000;
        else if (now > *deadline) return done;
        rd_kafka_poll(sink->rk, 10); /* backpressure: let deliveries drain */
    }
    return done;
}

/* Transactional mode: copy a message of the open transaction into `kept`
 * (grows by doubling; reused across transactions). */
static void rs_sink_keep_bytes(rs_sink_kafka_t *sink, int alert,
                               uint32_t slot, const void *key, size_t klen,
                               const void *buf, size_t len) {
    size_t need = (sizeof(rs_sink_kept_t) + klen + len + 7) & ~(size_t)7;
    if (sink->kept_len + need > sink->kept_cap) {
        while (sink->kept_len + need > sink->kept_cap) sink->kept_cap *= 2;
        sink->kept = rs_realloc(sink->kept, sink->kept_cap);
    }
    rs_sink_kept_t *k = (rs_sink_kept_t *)(sink->kept + sink->kept_len);
    k->slot = slot;
    k->alert = (uint32_t)alert;
    k->klen = (uint32_t)klen;
    k->len = (uint32_t)len;
    if (klen) memcpy(k + 1, key, klen);
    if (len) memcpy((uint8_t *)(k + 1) + klen, buf, len);
    sink->kept_len += need;
    sink->kept_n++;
}

static void rs_sink_keep(rs_sink_kafka_t *sink, int alert, uint32_t slot,
                         const char *key, const void *buf, size_t len) {
    rs_sink_keep_bytes(sink, alert, slot, key, strlen(key), buf, len);
}

rs_err_t rs_sink_kafka_publish(rs_sink_kafka_t *sink, const rs_score_t *sc,
                               uint64_t batch_seq) {
    int len = rs_score_encode(sink->fmt, sc, sink->buf, RS_ENCODE_MAX);
    if (len < 0) {
        rs_error("sink", "score of event '%.64s' does not encode",
                 sc->event_id);
        return RS_ERR_TOOBIG;
    }
    return rs_sink_kafka_publish_encoded(sink, sc, sink->buf, (size_t)len,
                                         batch_seq);
}

rs_format_t rs_sink_kafka_format(const rs_sink_kafka_t *sink) {
    return sink->fmt;
}

rs_err_t rs_sink_kafka_publish_encoded(rs_sink_kafka_t *sink,
                                       const rs_score_t *sc, const void *buf,
                                       size_t len, uint64_t batch_seq) {
    return rs_sink_kafka_publish_alert(sink, sc, buf, len, NULL, 0,
                                       batch_seq);
}

/* The bookkeeping of one message handed to librdkafka: queued (kerr 0),
 * or refused -- for a reason of its own, or for a full queue (only an
 * alert whose score is queued: the record stays all-or-nothing for the
 * caller).  A refused one is kept (retry list), or in transactional mode
 * dooms the transaction (the kept copy goes in the redone one). */
static void rs_sink_handed(rs_sink_kafka_t *sink, int alert, uint32_t slot,
                           const char *key, const void *buf, size_t len,
                           rd_kafka_resp_err_t kerr) {
    if (kerr) {
        /* e.g. the topic's metadata briefly unknown after a topic-level
         * error: re-produced on the next poll */
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rs_sink_refused(sink, alert ? sink->rkt_alerts : sink->rkt_scores,
                            kerr);
        if (sink->txn) sink->txn_abortable = 1;
        else rs_sink_retry_push(sink, alert, slot, key, buf, len);
    }
    if (sink->txn) rs_sink_keep(sink, alert, slot, key, buf, len);
    if (!kerr || !sink->txn) { /* a delivery report will come */
        sink->ring[slot].outstanding++;
        RS_ADD(sink->c.inflight, 1);
    }
    if (alert) RS_INC(sink->c.alerts);
    else RS_INC(sink->c.published);
}

static int rs_sink_is_alert(rs_decision_t d) {
    return d == RS_DECISION_REVIEW || d == RS_DECISION_DECLINE ||
           d == RS_DECISION_ALERT;
}

/* rs_sink_kafka_publish_batch; `copy` 0: the records are held (the
 * alerts of an alert_fn are copied all the same). */
static rs_err_t rs_sink_publish(rs_sink_kafka_t *sink, const rs_score_t *sc,
                                const void *const *bufs, const size_t *lens,
                                int n, int *next, rs_sink_alert_fn *alert_fn,
                                void *alert_opaque, uint64_t batch_seq,
                                int copy) {
    uint32_t slot;
    rs_err_t err;
    if (sink->fatal) return RS_ERR_KAFKA;
    if (sink->txn && !sink->txn_open) {
        rs_error("sink", "publish outside a transaction (call "
                 "rs_sink_kafka_txn_begin first)");
        return RS_ERR_STATE;
    }
    int i0 = *next, m = n - i0;
    if (m <= 0) return RS_OK;
    rs_sink_retry_drain(sink);
    if ((err = rs_sink_batch_slot(sink, batch_seq, &slot)) != RS_OK)
        return err;
    if (m > sink->pub_cap) { /* the first batches only: then reused */
        sink->rkms = rs_realloc(sink->rkms, (size_t)m * sizeof(*sink->rkms));
        sink->arkms = rs_realloc(sink->arkms,
                                 (size_t)m * sizeof(*sink->arkms));
        sink->pub_cap = m;
    }
    void *tag = (void *)(((uintptr_t)slot << 1) | 1u);
    rd_kafka_message_t *rkms = sink->rkms, *arkms = sink->arkms;
    for (int j = 0; j < m; j++) {
        const rs_score_t *s = &sc[i0 + j];
        rkms[j] = (rd_kafka_message_t){
            .payload = (void *)bufs[i0 + j], .len = lens[i0 + j],
            .key = (void *)s->entity_id, .key_len = strlen(s->entity_id),
            ._private = tag};
    }
    int64_t deadline = 0; /* set at a full queue (rs_sink_produce_run) */
    int h = rs_sink_produce_run(sink, sink->rkt_scores, rkms, m, copy,
                                &deadline);
    /* The scores handed over, then the alerts of those records: the order
     * per topic (and so per partition) is the records' order. */
    int na = 0;
    for (int j = 0; j < h; j++) {
        const rs_score_t *s = &sc[i0 + j];
        rs_sink_handed(sink, 0, slot, s->entity_id, rkms[j].payload,
                       rkms[j].len, rkms[j].err);
        if (!sink->rkt_alerts || !rs_sink_is_alert(s->decision)) continue;
        const void *abuf = rkms[j].payload;
        size_t alen = rkms[j].len;
        if (alert_fn) { /* its own payload, or nothing (alen 0) */
            size_t len = 0;
            const void *own = alert_fn(alert_opaque, i0 + j, &len);
            if (own) {
                if (!len) continue;
                abuf = own;
                alen = len;
            }
        }
        arkms[na++] = (rd_kafka_message_t){
            .payload = (void *)abuf, .len = alen, .key = rkms[j].key,
            .key_len = rkms[j].key_len, ._private = tag};
    }
    int ha = na ? rs_sink_produce_run(sink, sink->rkt_alerts, arkms, na,
                                      copy || alert_fn != NULL, &deadline)
                : 0;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int k = 0; k < na; k++) {
        if (k >= ha && arkms[k].err == RD_KAFKA_RESP_ERR__FATAL) {
            kerr = RD_KAFKA_RESP_ERR__FATAL;
            break;
        }
        rs_sink_handed(sink, 1, slot, arkms[k].key, arkms[k].payload,
                       arkms[k].len, arkms[k].err);
    }
    *next = i0 + h;
    if (h < m && rkms[h].err == RD_KAFKA_RESP_ERR__FATAL)
        kerr = RD_KAFKA_RESP_ERR__FATAL;
    if (kerr) {
        rs_sink_check_fatal(sink);
        rs_error("sink", "produce: %s", rd_kafka_err2str(kerr));
        return RS_ERR_KAFKA;
    }
    return h < m ? RS_ERR_AGAIN : RS_OK;
}

rs_err_t rs_sink_kafka_publish_batch(rs_sink_kafka_t *sink,
                                     const rs_score_t *sc,
                                     const void *const *bufs,
                                     const size_t *lens, int n, int *next,
                                     rs_sink_alert_fn *alert_fn,
                                     void *alert_opaque, uint64_t batch_seq,
                                     int copy) {
    return rs_sink_publish(sink, sc, bufs, lens, n, next, alert_fn,
                           alert_opaque, batch_seq, copy || !sink->hold);
}

rs_err_t rs_sink_kafka_set_hold(rs_sink_kafka_t *sink, int on) {
    if (on && sink->txn) return RS_ERR_STATE; /* it keeps copies anyway */
    sink->hold = on != 0;
    return RS_OK;
}

int rs_sink_kafka_holds(const rs_sink_kafka_t *sink) { return sink->hold; }

typedef struct rs_sink_one_alert_s {
    const void *abuf;
    size_t alen;
} rs_sink_one_alert_t;

static const void *rs_sink_one_alert(void *opaque, int i, size_t *len) {
    const rs_sink_one_alert_t *a = opaque;
    RS_UNUSED(i);
    *len = a->alen;
    return a->abuf;
}

rs_err_t rs_sink_kafka_publish_alert(rs_sink_kafka_t *sink,
                                     const rs_score_t *sc, const void *buf,
                                     size_t len, const void *abuf,
                                     size_t alen, uint64_t batch_seq) {
    rs_sink_one_alert_t a = {abuf, alen};
    const void *bufs[1] = {buf};
    size_t lens[1] = {len};
    int next = 0;
    /* copied: callers reuse buf at once (rs_sink_kafka_publish: the
     * sink's own encode buffer) */
    return rs_sink_publish(sink, sc, bufs, lens, 1, &next,
                           abuf ? rs_sink_one_alert : NULL, &a, batch_seq, 1);
}

rs_err_t rs_sink_kafka_batch_end(rs_sink_kafka_t *sink, uint64_t batch_seq) {
    if (batch_seq <= sink->last_ended) return RS_OK;
    for (uint32_t i = 0; i < sink->cnt; i++) {
        rs_sink_batch_t *b = rs_sink_slot(sink, sink->head + i);
        if (b->seq > batch_seq) break;
        b->ended = 1;
    }
    if (batch_seq > sink->last_seq) {
        /* A batch without messages (transactional: acknowledged with its
         * transaction, like the others). */
        if (sink->cnt == 0 && !sink->txn) {
            sink->acked = batch_seq;
            RS_STORE(sink->c.acked_seq, batch_seq);
        } else {
            uint32_t slot;
            rs_err_t err = rs_sink_batch_slot(sink, batch_seq, &slot);
            if (err != RS_OK) return err;
            sink->ring[slot].ended = 1;
        }
        sink->last_seq = batch_seq;
    }
    sink->last_ended = batch_seq;
    return RS_OK;
}

uint64_t rs_sink_kafka_acked(rs_sink_kafka_t *sink) {
    while (sink->cnt > 0) {
        rs_sink_batch_t *b = rs_sink_slot(sink, sink->head);
        if (!b->ended || b->outstanding > 0) break;
        if (sink->txn && b->seq > sink->txn_done_seq) break; /* uncommitted */
        sink->acked = b->seq;
        sink->head = (sink->head + 1) % RS_SINK_RING;
        sink->cnt--;
    }
    RS_STORE(sink->c.acked_seq, sink->acked);
    return sink->acked;
}

rs_err_t rs_sink_kafka_poll(rs_sink_kafka_t *sink, int timeout_ms) {
    rd_kafka_poll(sink->rk, timeout_ms);
    rs_sink_retry_drain(sink);
    rs_sink_check_fatal(sink);
    return sink->fatal ? RS_ERR_KAFKA : RS_OK;
}

rs_err_t rs_sink_kafka_flush(rs_sink_kafka_t *sink, int timeout_ms) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        rs_sink_retry_drain(sink);
        if (!sink->retry_head && rd_kafka_outq_len(sink->rk) == 0) break;
        int64_t left = (deadline - rs_clock_mono_us()) / 1000;
        if (left <= 0) return RS_ERR_TIMEOUT;
        rd_kafka_flush(sink->rk, (int)RS_MIN(left, 100));
        rs_sink_check_fatal(sink);
        if (sink->fatal) return RS_ERR_KAFKA;
    }
    rs_sink_kafka_acked(sink);
    return RS_OK;
}

/* ------------------------------------------------------ transactions */

/* Poll until every delivery report is served or the deadline passes. */
static void rs_sink_drain_reports(rs_sink_kafka_t *sink, int64_t deadline) {
    while (rd_kafka_outq_len(sink->rk) > 0 && rs_clock_mono_us() < deadline)
        rd_kafka_poll(sink->rk, 10);
    rd_kafka_poll(sink->rk, 0);
}

/* Produce the kept copies (the messages of the aborted transaction) into
 * the transaction just begun. */
static rs_err_t rs_sink_txn_reproduce(rs_sink_kafka_t *sink) {
    int64_t deadline = rs_clock_mono_us() + 10 * RS_SINK_BLOCK_MS * 1000LL;
    uint64_t n = 0;
    size_t off = 0;
    while (off < sink->kept_len) {
        rs_sink_kept_t *k = (rs_sink_kept_t *)(sink->kept + off);
        int xt = k->alert == 2; /* the txn topic: partition, no batch */
        rd_kafka_topic_t *rkt = xt         ? sink->rkt_txn
                                : k->alert ? sink->rkt_alerts
                                           : sink->rkt_scores;
        const char *key = (const char *)(k + 1);
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            sink->rk, RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_PARTITION(xt ? (int32_t)k->slot : RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, k->klen),
            RD_KAFKA_V_VALUE(xt && !k->len ? NULL : (void *)(key + k->klen),
                             k->len),
            RD_KAFKA_V_OPAQUE(xt ? (void *)sink
                                 : (void *)(((uintptr_t)k->slot << 1) | 1u)),
            RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
            rs_sink_check_fatal(sink);
            return RS_ERR_KAFKA;
        }
        /* A full queue, or a topic error that librdkafka keeps until the
         * next metadata refresh (the error that failed the aborted
         * transaction often is one): wait and try again. */
        if (kerr && kerr != RD_KAFKA_RESP_ERR__STATE &&
            rs_clock_mono_us() < deadline) {
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                RS_INC(sink->c.queue_full);
            rd_kafka_poll(sink->rk, 10);
            continue;
        }
        if (kerr) {
            sink->txn_abortable = 1;
            rs_error("sink", "producing the aborted transaction's messages "
                     "again: %s (%llu of %llu done): abort again",
                     rd_kafka_err2str(kerr), (unsigned long long)n,
                     (unsigned long long)sink->kept_n);
            return RS_ERR_AGAIN;
        }
        if (!xt) {
            rs_sink_slot(sink, k->slot)->outstanding++;
            RS_ADD(sink->c.inflight, 1);
        }
        RS_INC(sink->c.retries);
        n++;
        off += (sizeof(*k) + k->klen + k->len + 7) & ~(size_t)7;
    }
    rs_info("sink", "transaction redone: %llu message(s) of the aborted "
            "transaction produced again", (unsigned long long)n);
    return RS_OK;
}

rs_err_t rs_sink_kafka_txn_begin(rs_sink_kafka_t *sink) {
    if (sink->fatal) return RS_ERR_KAFKA;
    if (!sink->txn || sink->txn_open) {
        rs_error("sink", "txn begin: %s", !sink->txn
                 ? "the sink is not transactional"
                 : "a transaction is already open");
        return RS_ERR_STATE;
    }
    if (sink->fatal) return RS_ERR_KAFKA;
    rd_kafka_error_t *error = rd_kafka_begin_transaction(sink->rk);
    if (error)
        return rs_sink_txn_fail(sink, error, "begin transaction", NULL, 0);
    sink->txn_open = 1;
    sink->txn_abortable = 0;
    sink->txn_offsets_sent = 0;
    return sink->kept_n ? rs_sink_txn_reproduce(sink) : RS_OK;
}

rs_err_t rs_sink_kafka_txn_commit(rs_sink_kafka_t *sink,
                                  const rs_ingest_pos_t *pos, int n,
                                  const char *const topics[2],
                                  rd_kafka_consumer_group_metadata_t *cgmd,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    rd_kafka_error_t *error;
    if (sink->fatal)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "txn commit: the producer hit a fatal error");
    if (!sink->txn || !sink->txn_open)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE, "txn commit: %s",
                       !sink->txn ? "the sink is not transactional"
                                  : "no open transaction");
    if (n < 0 || (n > 0 && (!pos || !topics || !cgmd)))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "txn commit: positions need topics and the group "
                       "metadata");
    /* Every batch published so far belongs to this transaction. */
    rs_sink_kafka_batch_end(sink, sink->last_seq);
    /* Serve the delivery reports first: a failed message shows here,
     * before the commit round trip. */
    rd_kafka_resp_err_t kerr = rd_kafka_flush(sink->rk, timeout_ms);
    rs_sink_check_fatal(sink);
    if (sink->fatal)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "txn commit: the producer hit a fatal error");
    if (sink->txn_abortable)
        return rs_errf(errstr, errstr_size, RS_ERR_AGAIN,
                       "txn commit: a message of the transaction was not "
                       "delivered (abortable: abort the transaction and "
                       "redo it)");
    if (kerr == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return rs_errf(errstr, errstr_size, RS_ERR_TIMEOUT,
                       "txn commit: messages still undelivered after %d ms "
                       "(retriable: call again)", timeout_ms);
    /* After a retriable commit error the offsets are in the transaction
     * already; sending them again would conflict with the pending commit
     * (librdkafka: "retry call to resume"). */
    if (n > 0 && !sink->txn_offsets_sent) {
        rd_kafka_topic_partition_list_t *offs =
            rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++) {
            if (pos[i].topic != RS_MSG_TOPIC_EVENTS &&
                pos[i].topic != RS_MSG_TOPIC_LABELS) {
                rd_kafka_topic_partition_list_destroy(offs);
                return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                               "txn commit: position %d: bad topic %d", i,
                               (int)pos[i].topic);
            }
            if (pos[i].offset < 0) continue;
            rd_kafka_topic_partition_list_add(offs, topics[pos[i].topic],
                                              pos[i].partition)
                ->offset = pos[i].offset;
        }
        error = NULL;
        if (offs->cnt > 0) {
            int64_t left = (deadline - rs_clock_mono_us()) / 1000;
            error = rd_kafka_send_offsets_to_transaction(
                sink->rk, offs, cgmd, (int)RS_MAX(left, 1));
        }
        rd_kafka_topic_partition_list_destroy(offs);
        if (error)
            return rs_sink_txn_fail(sink, error, "send offsets to transaction",
                                    errstr, errstr_size);
        sink->txn_offsets_sent = 1;
    }
    int64_t left = (deadline - rs_clock_mono_us()) / 1000;
    error = rd_kafka_commit_transaction(sink->rk, (int)RS_MAX(left, 1));
    if (error)
        return rs_sink_txn_fail(sink, error, "commit transaction", errstr,
                                errstr_size);
    sink->txn_open = 0;
    sink->txn_done_seq = sink->last_seq;
    sink->kept_len = 0;
    sink->kept_n = 0;
    RS_INC(sink->c.txn_commits);
    rd_kafka_poll(sink->rk, 0);
    rs_sink_kafka_acked(sink);
    return RS_OK;
}

rs_err_t rs_sink_kafka_txn_abort(rs_sink_kafka_t *sink, int flags,
                                 int timeout_ms, char *errstr,
                                 size_t errstr_size) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    if (!sink->txn)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "txn abort: the sink is not transactional");
    if (sink->fatal)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "txn abort: the producer hit a fatal error");
    if (sink->txn_open) {
        sink->txn_aborting = 1;
        rd_kafka_error_t *error =
            rd_kafka_abort_transaction(sink->rk, timeout_ms);
        if (error) {
            sink->txn_aborting = 0;
            return rs_sink_txn_fail(sink, error, "abort transaction", errstr,
                                    errstr_size);
        }
        /* Serve the purge reports now, so that none of them is taken for a
         * failure of the next transaction. */
        rs_sink_drain_reports(sink, deadline);
        sink->txn_aborting = 0;
        sink->txn_open = 0;
        sink->txn_abortable = 0;
        RS_INC(sink->c.txn_aborts);
        rs_warn("sink", "transaction aborted (%llu message(s) %s)",
                (unsigned long long)sink->kept_n,
                (flags & RS_SINK_TXN_DISCARD) ? "discarded"
                                              : "kept for the next one");
    }
    if (flags & RS_SINK_TXN_DISCARD) {
        /* Those batches will never be delivered: done with them. */
        rs_sink_kafka_batch_end(sink, sink->last_seq);
        sink->txn_done_seq = sink->last_seq;
        sink->kept_len = 0;
        sink->kept_n = 0;
        rs_sink_kafka_acked(sink);
    }
    return RS_OK;
}

rs_err_t rs_sink_kafka_txn_topic(rs_sink_kafka_t *sink, const char *topic,
                                 rs_sink_txn_dr_fn *dr, void *opaque) {
    if (!sink->txn || !topic) return RS_ERR_STATE;
    if (sink->rkt_txn) {
        if (strcmp(rd_kafka_topic_name(sink->rkt_txn), topic))
            return RS_ERR_STATE;
    } else if (!(sink->rkt_txn = rd_kafka_topic_new(sink->rk, topic, NULL))) {
        return RS_ERR_STATE;
    }
    sink->txn_dr = dr;
    sink->txn_dr_opaque = opaque;
    return RS_OK;
}

rs_err_t rs_sink_kafka_txn_produce(rs_sink_kafka_t *sink, int32_t partition,
                                   const void *key, size_t klen,
                                   const void *val, size_t vlen) {
    if (sink->fatal) return RS_ERR_KAFKA;
    if (!sink->txn || !sink->txn_open || !sink->rkt_txn) return RS_ERR_STATE;
    int64_t deadline = rs_clock_mono_us() + 10 * RS_SINK_BLOCK_MS * 1000LL;
    rd_kafka_resp_err_t kerr;
    for (;;) {
        kerr = rd_kafka_producev(
            sink->rk, RD_KAFKA_V_RKT(sink->rkt_txn),
            RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE(vlen ? (void *)val : NULL, vlen),
            RD_KAFKA_V_OPAQUE((void *)sink), RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
            rs_clock_mono_us() > deadline)
            break;
        RS_INC(sink->c.queue_full);
        rd_kafka_poll(sink->rk, 10); /* backpressure */
    }
    if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
        rs_sink_check_fatal(sink);
        return RS_ERR_KAFKA;
    }
    if (kerr) { /* the transaction misses it: abort and redo */
        rs_sink_refused(sink, sink->rkt_txn, kerr);
        sink->txn_abortable = 1;
    }
    rs_sink_keep_bytes(sink, 2, (uint32_t)partition, key, klen, val, vlen);
    return RS_OK;
}

int rs_sink_kafka_txn_open(const rs_sink_kafka_t *sink) {
    return sink->txn_open;
}

void rs_sink_kafka_stats(const rs_sink_kafka_t *sink,
                         rs_sink_kafka_stats_t *st) {
    rs_sink_kafka_t *s = (rs_sink_kafka_t *)sink;
    st->published = RS_LOAD(s->c.published);
    st->alerts = RS_LOAD(s->c.alerts);
    st->delivered = RS_LOAD(s->c.delivered);
    st->failed = RS_LOAD(s->c.failed);
    st->retries = RS_LOAD(s->c.retries);
    st->queue_full = RS_LOAD(s->c.queue_full);
    st->inflight = RS_LOAD(s->c.inflight);
    st->acked_seq = RS_LOAD(s->c.acked_seq);
    st->txn_commits = RS_LOAD(s->c.txn_commits);
    st->txn_aborts = RS_LOAD(s->c.txn_aborts);
}

void rs_sink_kafka_destroy(rs_sink_kafka_t *sink) {
    if (!sink) return;
    if (sink->rk && sink->txn_open && !sink->fatal) {
        /* Left open, it would hold back read_committed consumers (the last
         * stable offset) until transaction.timeout.ms. */
        rs_warn("sink", "closing with an open transaction (%llu message(s)): "
                "aborting it", (unsigned long long)sink->kept_n);
        char ebuf[256];
        if (rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_DISCARD, RS_SINK_CLOSE_MS,
                                    ebuf, sizeof(ebuf)) != RS_OK)
            rs_error("sink", "%s", ebuf);
    }
    if (sink->rk && !sink->fatal &&
        rs_sink_kafka_flush(sink, RS_SINK_CLOSE_MS) != RS_OK)
        rs_error("sink", "closing with %lld undelivered message(s)",
                 (long long)RS_LOAD(sink->c.inflight));
    if (sink->rk && rd_kafka_outq_len(sink->rk) > 0) {
        /* Purge what is left and serve the purge reports, so retry
         * records still in flight come back to us and are freed. */
        sink->closing = 1;
        rd_kafka_purge(sink->rk, RD_KAFKA_PURGE_F_QUEUE |
                                     RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(sink->rk, 1000);
    }
    if (sink->rkt_scores) rd_kafka_topic_destroy(sink->rkt_scores);
    if (sink->rkt_alerts) rd_kafka_topic_destroy(sink->rkt_alerts);
    if (sink->rkt_txn) rd_kafka_topic_destroy(sink->rkt_txn);
    if (sink->rk) rd_kafka_destroy(sink->rk);
    while (sink->retry_head) {
        rs_sink_retry_t *re = sink->retry_head;
        sink->retry_head = re->next;
        free(re);
    }
    rs_free(sink->ring);
    rs_free(sink->buf);
    rs_free(sink->rkms);
    rs_free(sink->arkms);
    free(sink->kept);
    rs_free(sink);
}
