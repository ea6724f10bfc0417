/* svc_batch.c -- the scoring service's per-batch pipeline (design note:
 * scoring.h; shared state: service_int.h).
 *
 * A polled batch: its input positions recorded, labels to the feature
 * label state and the trainer, events through the duplicate window,
 * features, one model forward and the learning logs, then decisions,
 * records (encoded on the workers; duplicates here), Kafka and the Redis
 * writer.  A batch enters the in-flight ring; its offsets are stored once
 * Kafka and Redis hold it (rs_svc_store_acked), or, exactly-once, when
 * its transaction commits (rs_svc_txn_commit).  Backpressure (a full ring,
 * Kafka queue, Redis buffer or trainer queue) waits here, bounded by the
 * stop deadline.
 *
 * Threads: the service thread only (the workers run inside
 * rs_model_shard_forward and rs_workers_records; the trainer reads what
 * is queued for it).
 */
#include <stdlib.h>
#include <string.h>

#include "scoring/service_int.h"

/* rs_sink_alert_fn: the maintenance alert's own payload of record i. */
static const void *rs_svc_alert_payload(void *opaque, int i, size_t *len) {
    return rs_alerts_payload(opaque, i, len);
}

/* ------------------------------------------------------------- labels */

/* A free message slot of the trainer's queue; while it is full, wait
 * (backpressure: the trainer always makes progress, so learning never
 * loses a label). */
static rs_trainer_msg_t *rs_svc_train_slot(rs_service_t *svc) {
    rs_trainer_msg_t *m;
    int n;
    while (!(m = rs_trainer_reserve(svc->tr, 1, &n))) {
        svc->st.train_waits++;
        rs_trainer_wait_space(svc->tr, 10);
        rs_sink_kafka_poll(svc->ks, 0);
    }
    memset(m, 0, sizeof(*m));
    return m;
}

static double rs_svc_psi(const rs_service_t *svc) {
    rs_model_stats_t ms;
    rs_model_stats(svc->model, &ms);
    return ms.drift_psi;
}

/* The lowest score the model writes an input log for
 * (rs_model_input_t.log_min): with service.log_inputs: flagged only
 * decisions other than approve keep theirs, and rs_decide flags a score
 * only at or above one of its thresholds, so none below the lowest is
 * kept.  0 (every event) with log_inputs: all, and in maintenance mode,
 * where the alert policy decides (rs_alerts_score: the cold-start blend
 * may alert below the threshold). */
static double rs_svc_log_min(const rs_service_t *svc) {
    const rs_service_conf_t *c = svc->conf;
    if (c->log_inputs != RS_LOG_INPUTS_FLAGGED || svc->al) return 0;
    double t = c->review_threshold < c->decline_threshold
                   ? c->review_threshold : c->decline_threshold;
    if (c->alert_types[0] && c->alert_threshold < t) t = c->alert_threshold;
    return t;
}

/* The learning log of `partition`, opened (and, after a checkpoint
 * restore, rewound to the checkpoint's end) at its first use and handed
 * to the trainer.  NULL with errstr if it cannot be opened. */
rs_learnlog_t *rs_svc_log(rs_service_t *svc, int32_t partition,
                          char *errstr, size_t errstr_size) {
    rs_learnlog_t *lg = rs_state_log_if_open(svc->state, partition);
    if (lg) return lg;
    rs_err_t err;
    lg = rs_state_log(svc->state, partition, &err, errstr, errstr_size);
    if (!lg) return NULL;
    if (svc->lrestore[partition] >= 0) {
        uint64_t want = (uint64_t)svc->lrestore[partition];
        if (want > rs_learnlog_end(lg)) {
            /* the log lost records the checkpoint counted (deleted by
             * hand, a damaged disk): what is there is still good */
            rs_warn("service", "learning log of partition %d ends at %llu, "
                    "before the checkpoint's %llu: the records between are "
                    "lost to learning", (int)partition,
                    (unsigned long long)rs_learnlog_end(lg),
                    (unsigned long long)want);
        } else if (rs_learnlog_rewind(lg, want, errstr, errstr_size) !=
                   RS_OK) {
            rs_state_close_log(svc->state, partition);
            return NULL;
        }
    }
    rs_trainer_msg_t *m = rs_svc_train_slot(svc);
    m->kind = RS_TRAINER_ATTACH;
    m->partition = partition;
    m->log = lg;
    m->log_end = rs_learnlog_end(lg); /* observed before: in the model */
    rs_trainer_commit(svc->tr, 1);
    return lg;
}

/* Watermarks of the partitions of the last batch to the trainer, which
 * learns what matured (negatives) from their logs.  The batch's messages
 * go in runs of contiguous slots, one rs_trainer_commit per run (one
 * signal, normally one per batch): committed one by one, a small batch
 * of a paced stream over 32 partitions woke the trainer ~3.5 times per
 * batch to handle one watermark each (939 wake-ups/s at 2000 ev/s; a
 * sleep and a wake-up cost ~10-20 µs of CPU on the 2-core PVM guest).
 * The same messages in the same order as before. */
static void rs_svc_advance(rs_service_t *svc, int ntouched) {
    double psi = rs_svc_psi(svc);
    int i = 0;
    while (i < ntouched) {
        int room = 0, k = 0;
        rs_trainer_msg_t *run = NULL;
        for (; i < ntouched; i++) {
            int32_t p = svc->touched[i];
            const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
            uint64_t end = lg ? rs_learnlog_end(lg) : 0;
            if (svc->pwm[p] <= svc->pwm_sent[p] && end <= svc->lend_sent[p])
                continue;
            if (k == room) { /* the run is full: hand it over first */
                if (k) break;
                run = rs_trainer_reserve(svc->tr, ntouched - i, &room);
                if (!run) { /* full: wait for one slot (backpressure) */
                    run = rs_svc_train_slot(svc);
                    room = 1;
                }
            }
            rs_trainer_msg_t *m = &run[k++];
            memset(m, 0, sizeof(*m));
            m->kind = RS_TRAINER_WATERMARK;
            m->partition = p;
            m->t = svc->pwm[p];
            m->psi = psi;
            m->log_end = end; /* the standardiser observes up to here */
            svc->pwm_sent[p] = svc->pwm[p];
            svc->lend_sent[p] = end;
        }
        rs_trainer_commit(svc->tr, k);
    }
}

/* Swap in the trainer's newest version (between batches). */
void rs_svc_swap_weights(rs_service_t *svc) {
    rs_model_weights_t *w = rs_trainer_take(svc->tr);
    if (!w) return;
    if (rs_model_weights_use(svc->model, w) != RS_OK)
        rs_error("service", "cannot score with version %s (architecture "
                 "differs): keeping %s", rs_model_weights_version(w),
                 rs_model_version(svc->model));
    rs_model_weights_release(w);
}

/* A label: the feature engine's label state now, the learning through
 * the trainer (which finds the event's record in the learning logs). */
static void rs_svc_label(rs_service_t *svc, const rs_msg_t *msg, int i) {
    const rs_label_t *lb = &msg->lb;
    svc->st.labels++;
    /* maintenance: a failure or repair, at its place (i) in the batch */
    if (svc->al && rs_alerts_label(svc->al, i, lb))
        return;
    /* A label before its event (later in this batch, or still to come
     * on a partition that is behind or replaying) waits for it; what
     * nothing brings is dropped after the batch (parts.h). */
    if (rs_features_label(svc->feat, lb) == RS_ERR_NOTFOUND)
        rs_parts_label_hold(svc->parts, lb, msg->partition);
    rs_trainer_msg_t *m = rs_svc_train_slot(svc);
    m->kind = RS_TRAINER_LABEL;
    m->partition = msg->partition; /* labels keyed like their events */
    m->psi = rs_svc_psi(svc);
    m->lb = *lb;
    rs_trainer_commit(svc->tr, 1);
}

/* ------------------------------------------------------------ offsets */

/* At-least-once: store the offsets of every batch that Kafka has fully
 * acknowledged AND Redis has written.  (Exactly-once: batches retire when
 * their transaction commits, rs_svc_txn_commit.) */
void rs_svc_store_acked(rs_service_t *svc) {
    if (svc->eos) return;
    uint64_t acked = rs_sink_kafka_acked(svc->ks),
             written = rs_sink_redis_done(svc->rd);
    if (written < acked) acked = written;
    while (svc->ring_tail < svc->ring_head) {
        rs_svc_batch_t *b = &svc->ring[svc->ring_tail % RS_SVC_RING];
        if (b->seq > acked) break;
        rs_hist_record(&svc->st.deliver_us, rs_clock_mono_us() - b->handed_us);
        for (int i = 0; i < b->n; i++) {
            const rs_svc_off_t *o = &svc->offs[(b->off0 + (uint64_t)i) %
                                               RS_SVC_OFFS];
            rs_ingest_store_offset(svc->ing, o->topic, o->partition,
                                   o->offset);
        }
        svc->offs_tail = b->off0 + (uint64_t)b->n;
        svc->ring_tail++;
        if (svc->clog) rs_changelog_release(svc->clog, b->seq);
    }
}

/* Queue the batch's scores (and logged inputs) for the Redis writer.  A
 * full buffer is backpressure: consumption waits here -- Kafka output of
 * the batches before keeps flowing -- until the writer makes room (Redis
 * is back), or until asked to stop (RS_ERR_AGAIN: the batch is not queued
 * and its offsets are never stored, so it is read again after a
 * restart). */
static rs_err_t rs_svc_redis_enqueue(rs_service_t *svc, int n, uint64_t seq,
                                     volatile sig_atomic_t *stop,
                                     char *errstr, size_t errstr_size) {
    int warned = 0;
    for (;;) {
        rs_err_t err = rs_sink_redis_enqueue_recs(
            svc->rd, svc->out, n, (const char *const *)svc->json,
            svc->json_lens, svc->recs, svc->rec_lens,
            svc->log_max ? svc->logs : NULL, svc->log_lens, seq);
        if (err == RS_OK) return RS_OK;
        if (err != RS_ERR_AGAIN)
            return rs_errf(errstr, errstr_size, err,
                           "queueing scores for redis: %s", rs_err_str(err));
        if (!warned++)
            rs_warn("service", "redis buffer full: consumption paused until "
                    "redis catches up");
        svc->st.redis_waits++;
        if (rs_svc_stop_left_ms(svc, stop) == 0) {
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            return rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                           "stopped while the redis buffer was full (%llu "
                           "bytes of scores unwritten; redis %s): those "
                           "batches are read again after the restart",
                           (unsigned long long)rst.buffer_bytes,
                           rst.healthy ? "answers but is too slow"
                                       : "unreachable");
        }
        rs_sink_redis_wait(svc->rd, rs_sink_redis_done(svc->rd) + 1, 10);
        rs_sink_kafka_poll(svc->ks, 0);
        rs_svc_store_acked(svc);
        int64_t now = rs_clock_mono_us();
        rs_svc_periodic(svc, now);
    }
}

/* ------------------------------------------------------ exactly-once */

/* Commit the open transaction: the scores of its batches, their state
 * changelog records (changelog.h) and the input positions they reach.  Redis must hold the batches first (a crash after
 * the commit must not lose the records), so this waits for the writer.
 * An abortable or fatal error aborts and ends the run: the state already
 * contains the aborted events, so only a restart from the checkpoint
 * (which re-reads from the committed offsets) keeps it exact. */
rs_err_t rs_svc_txn_commit(rs_service_t *svc,
                           volatile sig_atomic_t *stop, char *errstr,
                           size_t errstr_size) {
    char e2[256];
    if (!svc->txn_open) return RS_OK;
    /* Every batch up to the last sealed one is queued for Redis (empty
     * ones included), so this wait ends as soon as the writer catches up.
     * It is bounded (service.commit_timeout, or the stop deadline): the
     * transaction and the consumer's poll interval must not outlive it.
     * Kafka delivery reports and the metrics snapshot are served while
     * waiting; the consumer is not polled here (it would hand out messages
     * or run a rebalance whose revoke commits re-entrantly), which the
     * bound keeps far below max.poll.interval.ms. */
    uint64_t last = svc->sealed_seq;
    int64_t t0 = rs_clock_mono_us();
    int warned = 0;
    while (rs_sink_redis_done(svc->rd) < last) {
        if (rs_sink_redis_wait(svc->rd, last, 100) == RS_OK) break;
        int64_t now = rs_clock_mono_us();
        if (!warned && now - t0 >= 1000000) {
            warned = 1;
            rs_warn("service", "transaction commit waits for redis (%s): "
                    "batch %llu of %llu written",
                    rs_sink_redis_healthy(svc->rd) ? "up but slow" : "down",
                    (unsigned long long)rs_sink_redis_done(svc->rd),
                    (unsigned long long)last);
        }
        rs_sink_kafka_poll(svc->ks, 0);
        rs_svc_periodic(svc, now);
        int left = rs_svc_stop_left_ms(svc, stop);
        if (left == 0 ||
            (left < 0 && now - t0 >= svc->conf->commit_timeout_ms * 1000)) {
            /* Nothing is committed: the input is read again after the
             * restart (from the committed offsets). */
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            if (svc->clog) rs_changelog_discard(svc->clog, last);
            svc->txn_open = 0;
            svc->st.txn_aborts++;
            return rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                           "transaction aborted after waiting %.1f s for "
                           "redis to write batches %llu..%llu (%llu bytes "
                           "queued; redis %s)%s",
                           (double)(now - t0) / 1e6,
                           (unsigned long long)rs_sink_redis_done(svc->rd) + 1,
                           (unsigned long long)last,
                           (unsigned long long)rst.buffer_bytes,
                           rst.healthy ? "answers but is too slow"
                                       : "unreachable",
                           left < 0 ? " (service.commit_timeout); restart to "
                                      "resume from the committed offsets"
                                    : "");
        }
    }
    /* The state changelog of these batches into the transaction (issue
     * 13): committed with their scores and input offsets, or not at all;
     * a redo below produces it again (the sink keeps it). */
    if (svc->clog) rs_changelog_release(svc->clog, last);
    rs_ingest_pos_t pos[256];
    int np = 0;
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS && np < (int)RS_ARRAY_LEN(pos);
         i++)
        if (svc->txn_dirty[i] && svc->applied[i] >= 0) {
            pos[np++] = (rs_ingest_pos_t){i / RS_SVC_MAX_PARTS,
                                          i % RS_SVC_MAX_PARTS,
                                          svc->applied[i]};
            svc->txn_dirty[i] = 0;
        }
    const char *topics[2] = {svc->app->ingest.topic_events,
                             svc->app->ingest.topic_labels};
    rd_kafka_consumer_group_metadata_t *cgmd =
        rs_ingest_group_metadata(svc->ing);
    rs_err_t err = RS_ERR_TIMEOUT;
    /* Retriable (timeout): the same call again.  Abortable: abort keeping
     * the transaction's messages, begin (which produces them again) and
     * commit the same positions -- the input is not processed twice.  One
     * failure may take two redos (librdkafka 2.0 fails the transaction
     * after a failed one once more). */
    for (int attempt = 0, redo = 0; attempt < 8; attempt++) {
        /* Stopping: within the stop deadline (at least one short try). */
        int left = rs_svc_stop_left_ms(svc, stop);
        int tmo = left < 0 ? 30000 : RS_MAX(RS_MIN(left, 30000), 1000);
        err = rs_sink_kafka_txn_commit(svc->ks, pos, np, topics, cgmd, tmo,
                                       errstr, errstr_size);
        if (err == RS_OK || err == RS_ERR_KAFKA) break;
        if (rs_svc_stop_left_ms(svc, stop) == 0) break;
        if (err == RS_ERR_TIMEOUT) continue;
        if (err != RS_ERR_AGAIN || redo++ >= 3) break;
        rs_warn("service", "transaction not committed (%s): redoing it",
                errstr);
        svc->st.txn_aborts++;
        if (rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_RETRY, 10000, e2,
                                    sizeof(e2)) != RS_OK ||
            rs_sink_kafka_txn_begin(svc->ks) != RS_OK)
            break;
        if (cgmd) rd_kafka_consumer_group_metadata_destroy(cgmd);
        cgmd = rs_ingest_group_metadata(svc->ing);
    }
    if (cgmd) rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (err != RS_OK) {
        /* Abortable or fatal: the state already holds these events, so
         * only a restart from the checkpoint (which re-reads from the
         * committed offsets) keeps state and output consistent. */
        svc->txn_open = 0;
        svc->st.txn_aborts++;
        if (err != RS_ERR_KAFKA)
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
        char e3[300];
        rs_strlcpy(e3, errstr, sizeof(e3));
        return rs_errf(errstr, errstr_size, err,
                       "transaction not committed, aborted (%s); restart to "
                       "resume from the committed offsets", e3);
    }
    svc->txn_open = 0;
    svc->st.txn_commits++;
    svc->ring_tail = svc->ring_head;
    svc->offs_tail = svc->offs_head;
    svc->progress_us = rs_clock_mono_us();
    return RS_OK;
}

/* ------------------------------------------------------------- batch */

/* Room in the in-flight ring for one more batch of up to n messages;
 * waits (backpressure) for acks / the Redis writer.  Exactly-once: the
 * ring empties only at a commit, so a full ring commits the transaction
 * (a long service.transaction_interval at a high rate). */
static rs_err_t rs_svc_ring_wait(rs_service_t *svc, int n,
                                 volatile sig_atomic_t *stop, char *errstr,
                                 size_t errstr_size) {
    while (svc->ring_head - svc->ring_tail >= RS_SVC_RING ||
           RS_SVC_OFFS - (svc->offs_head - svc->offs_tail) < (uint64_t)n) {
        if (svc->eos && svc->txn_open) {
            rs_err_t err = rs_svc_txn_commit(svc, stop, errstr, errstr_size);
            if (err != RS_OK) return err;
            continue;
        }
        if (rs_svc_stop_left_ms(svc, stop) == 0)
            return rs_errf(errstr, errstr_size, RS_ERR_AGAIN,
                           "stopped while %llu batches awaited Kafka "
                           "acknowledgements or the Redis writer",
                           (unsigned long long)(svc->ring_head -
                                                svc->ring_tail));
        rs_sink_kafka_poll(svc->ks, 1);
        rs_sink_redis_wait(svc->rd, rs_sink_redis_done(svc->rd) + 1, 10);
        rs_svc_store_acked(svc);
        rs_svc_periodic(svc, rs_clock_mono_us());
    }
    return RS_OK;
}

/* The arena set of the next batch (workers.h rs_workers_hold).  While
 * the Kafka sink still reads the bytes of the batch that last used it
 * (zero copy: until that batch is acknowledged), the batch takes the copy
 * set instead and is published with a copy (rs_svc_batch): never a wait
 * on the scoring path -- small batches at a low rate may come faster
 * than their acknowledgements (linger.ms). */
static void rs_svc_hold_pick(rs_service_t *svc) {
    uint64_t released = rs_sink_kafka_holds(svc->ks)
                            ? rs_sink_kafka_acked(svc->ks) : UINT64_MAX;
    int g = rs_workers_hold(svc->wk, svc->next_seq, released);
    if (g < 0) {
        g = RS_WORKERS_GENS;
        svc->st.hold_copies++;
    }
    svc->gen = g;
}

/* Encode out[from..n) once: JSON for Redis, and the same bytes for
 * Kafka unless the scores topic is protobuf (then a second, protobuf
 * copy).  The events' records are encoded by the workers: this is for
 * the duplicates. */
static rs_err_t rs_svc_encode(rs_service_t *svc, int from, int n,
                              char *errstr, size_t errstr_size) {
    int bad = -1, cnt = n - from;
    rs_err_t err = rs_score_encode_batch(RS_FORMAT_JSON, svc->out + from, cnt,
                                         &svc->enc_json[svc->gen],
                                         svc->json + from,
                                         svc->json_lens + from, &bad);
    if (err == RS_OK && rs_sink_kafka_format(svc->ks) != RS_FORMAT_JSON)
        err = rs_score_encode_batch(rs_sink_kafka_format(svc->ks),
                                    svc->out + from, cnt,
                                    &svc->enc_kafka[svc->gen],
                                    svc->kbytes + from, svc->klens + from,
                                    &bad);
    else if (err == RS_OK)
        for (int i = from; i < n; i++) {
            svc->kbytes[i] = svc->json[i];
            svc->klens[i] = svc->json_lens[i];
        }
    if (err != RS_OK) /* a corrupt record: a bug, never input */
        return rs_errf(errstr, errstr_size, err,
                       "score of %s does not encode",
                       bad >= 0 ? svc->out[from + bad].event_id : "?");
    for (int i = from; svc->recs && i < n; i++)
        svc->recs[i] = NULL; /* the Redis sink encodes these (few) */
    return RS_OK;
}

/* Record that the batch read (topic, partition) up to `offset`. */
static void rs_svc_batch_off(rs_service_t *svc, rs_svc_batch_t *b,
                             int32_t topic, int32_t partition,
                             int64_t offset) {
    for (int i = b->n - 1; i >= 0; i--) {
        rs_svc_off_t *o = &svc->offs[(b->off0 + (uint64_t)i) % RS_SVC_OFFS];
        if (o->topic == topic && o->partition == partition) {
            if (offset > o->offset) o->offset = offset;
            return;
        }
    }
    svc->offs[(b->off0 + (uint64_t)b->n) % RS_SVC_OFFS] =
        (rs_svc_off_t){topic, partition, offset};
    b->n++;
    svc->offs_head++;
}

/* The decision on record of event row k (dedup entry from the batch). */
static void rs_svc_dedup_set(rs_service_t *svc, int k, float score,
                             rs_decision_t decision, uint32_t flags,
                             const char *version) {
    if (!svc->dedup) return;
    rs_dedup_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.score = score;
    rec.decision = (uint8_t)decision;
    rec.flags = flags;
    rec.has = 1;
    rs_strlcpy(rec.model_version, version, sizeof(rec.model_version));
    rs_dedup_set(svc->dedup, svc->ev_dd[k], &rec);
}

/* The batch's duplicates (after its events are scored: an original may
 * be in the same batch) as svc->out[*npub ..], published with the rest:
 * the decision on record -- score, decision, model version, flags -- plus
 * RS_SCORE_FLAG_DUPLICATE, no explanation, no input log.  A replayed
 * duplicate rebuilds nothing and publishes nothing. */
static void rs_svc_duplicates(rs_service_t *svc, int ndup, int *npub) {
    int64_t now_wall_us = rs_clock_wall_us(), now_mono = rs_clock_mono_us();
    for (int j = 0; j < ndup; j++) {
        const rs_msg_t *m = svc->msgs[svc->dup_msg[j]];
        rs_dedup_rec_t rec;
        if (m->replay) continue;
        if (rs_dedup_get(svc->dedup, svc->dup_dd[j], &rec) != RS_OK ||
            !rec.has) {
            /* Its original was never scored (it failed in its batch):
             * nothing on record to repeat. */
            rs_warn("service", "duplicate %s: no decision on record",
                    m->ev.id);
            continue;
        }
        rs_score_t *sc = &svc->out[*npub];
        memset(sc, 0, sizeof(*sc));
        rs_strlcpy(sc->event_id, m->ev.id, sizeof(sc->event_id));
        rs_strlcpy(sc->entity_id, m->ev.entity_id, sizeof(sc->entity_id));
        sc->score = rec.score;
        sc->decision = (rs_decision_t)rec.decision;
        rs_strlcpy(sc->model_version, rec.model_version,
                   sizeof(sc->model_version));
        sc->event_time_ms = m->ev.event_time_ms;
        sc->flags = rec.flags | RS_SCORE_FLAG_DUPLICATE;
        rs_event_fields_from_event(&sc->event, &m->ev); /* as received */
        sc->scored_at_ms = now_wall_us / 1000;
        sc->latency_us = now_mono - m->received_us;
        svc->logs[*npub] = NULL;
        svc->log_lens[*npub] = 0;
        svc->st.duplicates++;
        (*npub)++;
    }
}

/* Duplicate-window probes prefetched this many messages ahead (a
 * message's loop turn is ~1 µs of features: a few turns cover a miss). */
#define RS_SVC_DD_AHEAD 4

/* Process one polled batch of n messages. */
rs_err_t rs_svc_batch(rs_service_t *svc, int n,
                      volatile sig_atomic_t *stop, char *errstr,
                      size_t errstr_size) {
    int D = svc->dim, nev = 0, npub = 0, ndup = 0, ntouched = 0;
    rs_err_t werr = rs_svc_ring_wait(svc, n, stop, errstr, errstr_size);
    if (werr != RS_OK) return werr;
    rs_svc_hold_pick(svc);
    RS_SVC_MARK(svc, RS_SVC_TR_RING);
    if (svc->eos && !svc->txn_open) {
        rs_err_t err = rs_sink_kafka_txn_begin(svc->ks);
        if (err != RS_OK)
            return rs_errf(errstr, errstr_size, err,
                           "cannot begin a transaction: %s",
                           rs_err_str(err));
        svc->txn_open = 1;
        svc->txn_begin_us = rs_clock_mono_us();
    }
    rs_svc_batch_t *b = &svc->ring[svc->ring_head % RS_SVC_RING];
    b->seq = svc->next_seq++;
    b->off0 = svc->offs_head;
    b->n = 0;

    /* The duplicate window's keys first: each check's probe is one cache
     * miss in a large table, so its line is fetched RS_SVC_DD_AHEAD
     * messages ahead of it (rs_dedup_prefetch). */
    if (svc->dedup) {
        for (int i = 0; i < n; i++) {
            const rs_msg_t *m = svc->msgs[i];
            if (m->kind != RS_MSG_EVENT) continue;
            svc->dd_key[i] = rs_dedup_key(m->ev.entity_id, m->ev.id);
            if (i < RS_SVC_DD_AHEAD)
                rs_dedup_prefetch(svc->dedup, svc->dd_key[i]);
        }
    }
    for (int i = 0; i < n; i++) {
        const rs_msg_t *m = svc->msgs[i];
        if (svc->dedup && i + RS_SVC_DD_AHEAD < n &&
            svc->msgs[i + RS_SVC_DD_AHEAD]->kind == RS_MSG_EVENT)
            rs_dedup_prefetch(svc->dedup, svc->dd_key[i + RS_SVC_DD_AHEAD]);
        rs_svc_batch_off(svc, b, m->topic, m->partition, m->offset);
        if (m->partition >= 0 && m->partition < RS_SVC_MAX_PARTS &&
            (m->topic == 0 || m->topic == 1)) {
            svc->applied[m->topic * RS_SVC_MAX_PARTS + m->partition] =
                m->offset + 1;
            /* A replayed message lies below the committed offset: never
             * send its position (it would move the group's offset back). */
            if (!m->replay)
                svc->txn_dirty[m->topic * RS_SVC_MAX_PARTS + m->partition] =
                    1;
        }
        switch (m->kind) {
        case RS_MSG_LABEL: rs_svc_label(svc, m, i); break;
        case RS_MSG_REJECT: svc->st.rejected++; break;
        case RS_MSG_EVENT: {
            svc->st.events++;
            uint64_t dd = 0;
            if (svc->dedup &&
                rs_dedup_check_part(svc->dedup, svc->dd_key[i],
                                    m->ev.event_time_ms, m->partition, &dd)) {
                /* Seen before (maybe earlier in this batch): it gets the
                 * decision on record once the batch is scored, and enters
                 * neither the features nor the model again. */
                svc->dup_msg[ndup] = i;
                svc->dup_dd[ndup++] = dd;
                break;
            }
            float *x = svc->x + (size_t)nev * (size_t)D;
            svc->flags[nev] = 0;
            rs_features_set_partition(svc->feat, m->partition); /* its state's */
            /* maintenance: reports due at this event time (alerts.h) */
            if (svc->al) rs_alerts_event(svc->al, i, &m->ev, m->partition);
            /* cpstage hook: the shared features first (the engine, in
             * ENTITY scope, leaves them as they are) */
            int64_t tcp = svc->trace && svc->cp ? rs_clock_mono_us() : 0;
            if (svc->cp && m->replay) /* rebuilds state, never published */
                rs_cpstage_fill_replay(svc->cp, m->partition, m->offset,
                                       &m->ev, x, svc->stop);
            else if (svc->cp)
                rs_cpstage_fill(svc->cp, m->partition, m->offset, &m->ev, x,
                                svc->stop);
            if (tcp) { /* service.trace_slow: the stage's share */
                tcp = rs_clock_mono_us() - tcp;
                svc->tr_cp_us += tcp;
                if (tcp > svc->tr_cp_max_us) svc->tr_cp_max_us = tcp;
            }
            if (rs_features_process(svc->feat, &m->ev, x, &svc->flags[nev]) !=
                RS_OK) {
                /* Decoders validate first, so this is a programming error
                 * rather than bad input: count it, never crash. */
                svc->st.rejected++;
                break;
            }
            if (rs_parts_labels_held(svc->parts)) /* a replay's labels */
                rs_parts_label_release(svc->parts, svc->feat, m->ev.id);
            if (m->ev.event_time_ms > svc->watermark_ms)
                svc->watermark_ms = m->ev.event_time_ms;
            if (m->partition < 0 || m->partition >= RS_STATE_MAX_PARTS)
                return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                               "input partition %d: at most %d partitions "
                               "are supported", (int)m->partition,
                               RS_STATE_MAX_PARTS);
            /* partitions of the batch (lpend marks them until the
             * forward, then counts their records) */
            if (!svc->lpend[m->partition]++)
                svc->touched[ntouched++] = m->partition;
            if (m->ev.event_time_ms > svc->pwm[m->partition])
                svc->pwm[m->partition] = m->ev.event_time_ms;
            svc->ev_dd[nev] = dd;
            svc->ev_msg[nev++] = i;
            break;
        }
        }
    }

    RS_SVC_MARK(svc, RS_SVC_TR_FEAT);
    if (nev > 0) {
        /* One call for the micro-batch, any model kind: scores, feature
         * contributions, attended history and experts; each event is also
         * remembered for learning when its label arrives. */
        /* learning records: positions in their partitions' logs */
        for (int i = 0; i < ntouched; i++) svc->lpend[svc->touched[i]] = 0;
        const double log_min = rs_svc_log_min(svc);
        for (int k = 0; k < nev; k++) {
            const rs_msg_t *m = svc->msgs[svc->ev_msg[k]];
            rs_learnlog_t *lg = rs_svc_log(svc, m->partition, errstr,
                                           errstr_size);
            if (!lg) return RS_ERR_IO; /* never score what cannot learn */
            svc->ev_log[k] = lg;
            rs_model_input_from_event(&svc->min[k], &m->ev,
                                      svc->x + (size_t)k * (size_t)D);
            svc->min[k].lrec = svc->lrec + (size_t)k * svc->lrec_size;
            /* the model explains only what the record will carry */
            svc->min[k].explain_min = svc->conf->explain_min_score;
            svc->min[k].lpos = RS_LPOS(m->partition,
                                       rs_learnlog_end(lg) +
                                           svc->lpend[m->partition]++);
            if (svc->log_max) {
                svc->min[k].log = svc->logbuf + (size_t)k * svc->log_max;
                svc->min[k].log_cap = svc->log_max;
                svc->min[k].log_min = log_min;
            }
        }
        int explain = svc->conf->explain;
        /* sharded by entity on the workers (model/shard.h; 12.2) */
        rs_err_t ferr = rs_model_shard_forward(
            svc->msh, svc->min, nev, svc->mout,
            explain ? svc->contrib : NULL,
            RS_MODEL_FWD_REMEMBER | (explain ? RS_MODEL_FWD_EXPLAIN : 0));
        if (ferr != RS_OK)
            return rs_errf(errstr, errstr_size, ferr, "model forward: %s",
                           rs_err_str(ferr));
        RS_SVC_MARK(svc, RS_SVC_TR_FWD);
        {
            rs_model_shard_stats_t shs;
            rs_model_shard_stats(svc->msh, &shs);
            svc->st.model_sharded = shs.sharded;
        }
        /* in input order: each lands at the position its record names */
        for (int k = 0; k < nev; k++) {
            rs_err_t lerr = rs_learnlog_append(svc->ev_log[k], svc->min[k].lrec,
                                               1, errstr, errstr_size);
            if (lerr != RS_OK) return lerr;
        }
        for (int i = 0; i < ntouched; i++) svc->lpend[svc->touched[i]] = 0;
        for (int k = 0; k < nev; k++) svc->scores[k] = svc->mout[k].score;
        const char *version = rs_model_version(svc->model);
        /* Decisions, the duplicate window and counters here; the rest of
         * each record (fields, explanation, stamps, encoding) on the
         * workers (workers.h). */
        for (int k = 0; k < nev; k++) {
            const rs_msg_t *m = svc->msgs[svc->ev_msg[k]];
            /* maintenance: every score through the alert policy, in input
             * order (alerts.h) */
            int64_t rul = 0;
            double alert_score = 0;
            rs_decision_t mdec =
                svc->al ? rs_alerts_score(svc->al, svc->ev_msg[k],
                                          m->replay ? -1 : npub, &m->ev,
                                          m->partition, svc->scores[k],
                                          svc->x + (size_t)k * (size_t)D,
                                          version, &rul, &alert_score)
                        : RS_DECISION_UNSPECIFIED;
            if (m->replay) {
                /* Read again below the committed offset (restart from a
                 * checkpoint): its score is already delivered; it only
                 * rebuilds the state (the duplicate window included). */
                svc->pub[k] = -1;
                svc->st.replayed++;
                rs_svc_dedup_set(svc, k, svc->scores[k],
                                 rs_decide(svc->conf, m->ev.type,
                                           svc->scores[k]),
                                 svc->flags[k] & RS_SCORE_FLAG_LATE, version);
                continue;
            }
            svc->pub[k] = npub;
            rs_score_t *sc = &svc->out[npub];
            sc->score = svc->scores[k];
            sc->decision = rs_decide(svc->conf, m->ev.type, sc->score);
            if (mdec != RS_DECISION_UNSPECIFIED) sc->decision = mdec;
            sc->rul = rul;
            sc->alert_score = alert_score;
            sc->flags = svc->flags[k] & RS_SCORE_FLAG_LATE;
            rs_svc_dedup_set(svc, k, svc->scores[k], sc->decision, sc->flags,
                             version);
            if (explain && sc->score >= svc->conf->explain_min_score)
                svc->st.explained++;
            int log = svc->log_max && svc->mout[k].log_len > 0 &&
                      (svc->conf->log_inputs == RS_LOG_INPUTS_ALL ||
                       sc->decision != RS_DECISION_APPROVE);
            svc->logs[npub] = log ? svc->min[k].log : NULL;
            svc->log_lens[npub] = log ? svc->mout[k].log_len : 0;
            svc->st.inputs_logged += (uint64_t)log;
            switch (sc->decision) {
            case RS_DECISION_REVIEW: svc->st.reviews++; break;
            case RS_DECISION_DECLINE: svc->st.declines++; break;
            case RS_DECISION_ALERT: svc->st.alerts++; break;
            default: break;
            }
            if (sc->decision != RS_DECISION_APPROVE && svc->example_rank < 2) {
                rs_strlcpy(svc->example_id, m->ev.id,
                           sizeof(svc->example_id));
                svc->example_rank = 2;
            }
            npub++;
        }
        RS_SVC_MARK(svc, RS_SVC_TR_LOG);
        /* Stamp, fill, encode once: latency ends when the scores are
         * handed to the producer. */
        int64_t now_wall_us = rs_clock_wall_us(), now_mono = rs_clock_mono_us();
        rs_workers_batch_t wb = {
            .conf = svc->conf, .feat = svc->feat, .dim = D, .nev = nev,
            .msgs = svc->msgs, .ev_msg = svc->ev_msg, .pub = svc->pub,
            .x = svc->x, .contrib = explain ? svc->contrib : NULL,
            .mout = svc->mout, .version = version,
            .now_wall_us = now_wall_us, .now_mono_us = now_mono,
            .out = svc->out, .kafka_format = rs_sink_kafka_format(svc->ks),
            .json = svc->json, .json_lens = svc->json_lens,
            .kbytes = svc->kbytes, .klens = svc->klens,
            .recs = svc->recs, .rec_lens = svc->rec_lens, .gen = svc->gen};
        rs_err_t rerr = rs_workers_records(svc->wk, &wb);
        if (rerr != RS_OK) /* a corrupt record: a bug, never input */
            return rs_errf(errstr, errstr_size, rerr,
                           "score of %s does not encode",
                           wb.bad >= 0 ? svc->out[wb.bad].event_id : "?");
        RS_SVC_MARK(svc, RS_SVC_TR_REC);
        for (int k = 0; svc->feat_out && k < nev; k++) {
            if (svc->pub[k] < 0) continue; /* tests: id partition offset x */
            const rs_msg_t *m = svc->msgs[svc->ev_msg[k]];
            fprintf(svc->feat_out, "%s\t%d\t%lld\t", m->ev.id,
                    (int)m->partition, (long long)m->offset);
            for (int j = 0; j < D; j++) {
                uint32_t u;
                memcpy(&u, svc->x + (size_t)k * (size_t)D + (size_t)j, 4);
                fprintf(svc->feat_out, "%s%08x", j ? "," : "", u);
            }
            fputc('\n', svc->feat_out);
        }
        if (svc->feat_out) fflush(svc->feat_out);
        for (int k = 0; k < nev; k++) {
            if (svc->pub[k] < 0) continue;
            const rs_msg_t *m = svc->msgs[svc->ev_msg[k]];
            rs_hist_record(&svc->st.proc_us, svc->out[svc->pub[k]].latency_us);
            if (m->produced_ms > 0) {
                rs_hist_record(&svc->st.e2e_us,
                               now_wall_us - m->produced_ms * 1000);
                /* latency split: up to the poll (wall clock of the
                 * receipt from the monotonic stamp) */
                rs_hist_record(&svc->st.fetch_us,
                               m->received_us + (now_wall_us - now_mono) -
                                   m->produced_ms * 1000);
            }
        }
        svc->st.scored += (uint64_t)npub;
        if (npub && !svc->first_scored_us) svc->first_scored_us = now_mono;
        if (svc->first_scored_us)
            svc->st.active_s = (double)(now_mono - svc->first_scored_us) / 1e6;
        if (npub && !svc->example_rank) {
            rs_strlcpy(svc->example_id, svc->out[0].event_id,
                       sizeof(svc->example_id));
            svc->example_rank = 1;
        }
    }
    /* The duplicates after the events (their originals may be in this
     * batch), encoded here: few. */
    int nev_pub = npub;
    if (ndup > 0) rs_svc_duplicates(svc, ndup, &npub);
    if (npub > nev_pub) {
        rs_err_t eerr = rs_svc_encode(svc, nev_pub, npub, errstr,
                                      errstr_size);
        if (eerr != RS_OK) return eerr;
    }

    /* Publish (the same bytes go to Kafka and Redis): the batch in one
     * call, one run per topic.  A full local queue is backpressure: serve
     * delivery reports until there is room (never drop, never skip). */
    int next = 0;
    /* the copy set: every set still held (rs_svc_hold_pick) */
    const int copy = svc->gen == RS_WORKERS_GENS;
    for (;;) {
        rs_err_t err = rs_sink_kafka_publish_batch(
            svc->ks, svc->out, svc->kbytes, svc->klens, npub, &next,
            svc->al ? rs_svc_alert_payload : NULL, svc->al, b->seq, copy);
        if (err == RS_OK) break;
        if (err == RS_ERR_AGAIN && rs_svc_stop_left_ms(svc, stop) != 0) {
            rs_sink_kafka_poll(svc->ks, 10);
            continue;
        }
        const rs_score_t *sc = &svc->out[RS_MIN(next, npub - 1)];
        svc->st.kafka_errors++;
        return rs_errf(errstr, errstr_size, err,
                       "publishing score of %s%s: %s", sc->event_id,
                       (sc->flags & RS_SCORE_FLAG_DUPLICATE)
                           ? " (a duplicate)" : "",
                       rs_err_str(err));
    }
    if (svc->al) rs_alerts_batch_end(svc->al); /* labels after the events */
    RS_SVC_MARK(svc, RS_SVC_TR_PUB);
    /* Every batch goes to the Redis writer, also one that published no
     * score (labels, rejects or replayed events only): with n == 0 it only
     * moves the written-batch watermark on (sink.h), which the offset store
     * (at-least-once) and the transaction commit (exactly-once) wait for.
     * Skipping it left every later batch undelivered for good. */
    rs_err_t qerr = rs_svc_redis_enqueue(svc, npub, b->seq, stop, errstr,
                                         errstr_size);
    if (qerr != RS_OK) return qerr;
    RS_SVC_MARK(svc, RS_SVC_TR_REDIS);
    /* Exactly-once: a reject's dead-letter copy must be acknowledged before
     * a commit includes its position (stores nothing in that mode). */
    if (svc->eos) rs_ingest_store_ref(svc->ing, svc->msgs, n);
    rs_sink_kafka_batch_end(svc->ks, b->seq);
    b->handed_us = rs_clock_mono_us();
    svc->ring_head++;
    svc->sealed_seq = b->seq;
    svc->progress_us = rs_clock_mono_us();
    svc->st.batches++;
    rs_svc_advance(svc, ntouched);
    rs_svc_clog_check(svc);
    if (svc->clog) /* what the batch changed, produced once it retires */
        rs_changelog_stage_ref(svc->clog, b->seq, svc->msgs, n, rs_svc_p_pos,
                               svc);
    return RS_OK;
}

/* ------------------------------------------------------------- trace */

/* service.trace_slow: one log line for a turn of the scoring loop whose
 * batch (poll return -> done) or whose work between batches took at least
 * the threshold, or one of whose messages waited that long between its
 * production and the consumer's read (broker, fetch, librdkafka's queue):
 * the batch size, how long its oldest message waited before the poll
 * returned it (since it was produced; since the consumer read it, i.e. in
 * the read-ahead buffer or the task merge), and each stage's time
 * (RS_SVC_TR_*; a stage not reached counts 0).  The poll's own time is
 * shown but never makes a turn slow: it includes the idle wait for the
 * first message. */
void rs_svc_trace(rs_service_t *svc, int n) {
    int64_t *tr = svc->trm;
    for (int i = 1; i < RS_SVC_TR_N; i++)
        if (!tr[i]) tr[i] = tr[i - 1];
    int64_t thr = svc->conf->trace_slow_ms * 1000;
    int64_t batch = tr[RS_SVC_TR_BEND] - tr[RS_SVC_TR_POLL1],
            after = tr[RS_SVC_TR_END] - tr[RS_SVC_TR_BEND],
            poll = tr[RS_SVC_TR_POLL1] - tr[RS_SVC_TR_POLL0];
    /* the batch's longest wait before the consumer read a message
     * (broker, fetch, librdkafka's queue): produced -> read */
    int64_t off = rs_clock_wall_us() - rs_clock_mono_us();
    int64_t prod = INT64_MAX, recv = INT64_MAX, fetch = 0;
    for (int i = 0; i < n; i++) {
        const rs_msg_t *m = svc->msgs[i];
        if (m->produced_ms > 0) {
            if (m->produced_ms * 1000 < prod) prod = m->produced_ms * 1000;
            int64_t f = m->received_us + off - m->produced_ms * 1000;
            if (f > fetch) fetch = f;
        }
        if (m->received_us < recv) recv = m->received_us;
    }
    if (batch >= thr || after >= thr || fetch >= thr) {
        double age = prod == INT64_MAX ? 0
                     : (double)(tr[RS_SVC_TR_POLL1] + off - prod) / 1000.0;
        double held = recv == INT64_MAX
                          ? 0 : (double)(tr[RS_SVC_TR_POLL1] - recv) / 1000.0;
#define RS_TR_MS(a, b) ((double)(tr[b] - tr[a]) / 1000.0)
        rs_info("service", "slow turn: %d messages, oldest produced %.1f ms "
                "/ read %.1f ms before the poll returned, longest produced -> "
                "read %.1f ms; poll %.1f, batch "
                "%.1f ms (ring %.1f, features %.1f [counterparty stage %.1f, "
                "longest %.1f], forward %.1f, logs %.1f, "
                "records %.1f, publish %.1f, redis %.1f, trainer %.1f), "
                "after %.1f ms (acks %.1f, swap %.1f, checkpoint %.1f%s, "
                "periodic %.1f); %llu batches in flight",
                n, age, held, (double)fetch / 1000.0, (double)poll / 1000.0,
                (double)batch / 1000.0,
                RS_TR_MS(RS_SVC_TR_POLL1, RS_SVC_TR_RING),
                RS_TR_MS(RS_SVC_TR_RING, RS_SVC_TR_FEAT),
                (double)svc->tr_cp_us / 1000.0,
                (double)svc->tr_cp_max_us / 1000.0,
                RS_TR_MS(RS_SVC_TR_FEAT, RS_SVC_TR_FWD),
                RS_TR_MS(RS_SVC_TR_FWD, RS_SVC_TR_LOG),
                RS_TR_MS(RS_SVC_TR_LOG, RS_SVC_TR_REC),
                RS_TR_MS(RS_SVC_TR_REC, RS_SVC_TR_PUB),
                RS_TR_MS(RS_SVC_TR_PUB, RS_SVC_TR_REDIS),
                RS_TR_MS(RS_SVC_TR_REDIS, RS_SVC_TR_BEND),
                (double)after / 1000.0,
                RS_TR_MS(RS_SVC_TR_BEND, RS_SVC_TR_ACKS),
                RS_TR_MS(RS_SVC_TR_ACKS, RS_SVC_TR_SWAP),
                RS_TR_MS(RS_SVC_TR_SWAP, RS_SVC_TR_CKPT),
                svc->ckpt_active ? " active" : "",
                RS_TR_MS(RS_SVC_TR_CKPT, RS_SVC_TR_END),
                (unsigned long long)(svc->ring_head - svc->ring_tail));
#undef RS_TR_MS
        svc->st.slow_turns++;
    }
    memset(tr, 0, sizeof(svc->trm));
    svc->tr_cp_us = svc->tr_cp_max_us = 0;
}
