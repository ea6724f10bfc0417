/* svc_parts.c -- the scoring service's side of partitions that come and go
 * (design note: scoring.h, parts.h; shared state: service_int.h).
 *
 * The operations parts.h needs from the service (flush what is in flight,
 * input positions, learning logs, the checkpoint in progress, ownership,
 * the changelog), the revoke hook (exactly-once commits or aborts its
 * transaction first) and the changelog topic check at the first
 * assignment.
 *
 * Threads: the service thread; the hooks run inside rs_ingest_poll
 * (rebalance callbacks) or rs_parts_tick, both on it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scoring/service_int.h"

/* Partitions leave this instance (rebalance, inside rs_ingest_poll):
 * before a revoke, commit what was processed so the new owner starts after
 * it; after a loss, abort (the new owner produces those results). */
static void rs_svc_revoked(void *opaque, const rs_ingest_pos_t *parts, int n,
                           int lost) {
    rs_service_t *svc = opaque;
    char e2[512];
    if (svc->eos && svc->txn_open) {
        if (lost) {
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            if (svc->clog) rs_changelog_discard(svc->clog, svc->sealed_seq);
            svc->txn_open = 0;
            svc->st.txn_aborts++;
            memset(svc->txn_dirty, 0, 2 * RS_SVC_MAX_PARTS);
            rs_svc_ckpt_drop(svc); /* it covers the aborted batches */
            svc->ring_tail = svc->ring_head;
            svc->offs_tail = svc->offs_head;
            rs_warn("service", "%d partition(s) lost: open transaction "
                    "aborted", n);
        } else if (rs_svc_txn_commit(svc, svc->stop, e2, sizeof(e2)) !=
                   RS_OK) {
            rs_error("service", "commit before revoke: %s", e2);
        }
    }
    for (int i = 0; i < n; i++)
        if (parts[i].topic >= 0 && parts[i].topic < 2 &&
            parts[i].partition >= 0 && parts[i].partition < RS_SVC_MAX_PARTS)
            svc->txn_dirty[parts[i].topic * RS_SVC_MAX_PARTS +
                           parts[i].partition] = 0;
}

/* ----------------------------------- partition-local state (issue 13)
 * The operations parts.h needs from the service, and the revoke hook. */

static int rs_svc_p_flush(void *o) {
    rs_service_t *svc = o;
    int ok;
    if (svc->eos) {
        ok = !svc->txn_open; /* rs_svc_revoked committed */
    } else {
        rs_sink_kafka_flush(svc->ks, 10000);
        rs_sink_redis_wait(svc->rd, svc->sealed_seq, 10000);
        rs_svc_store_acked(svc);
        ok = svc->ring_head == svc->ring_tail;
    }
    /* the changelog up to what was delivered, acknowledged (its end is
     * what a partition checkpoint records) */
    if (svc->clog && rs_changelog_flush(svc->clog, 10000)) ok = 0;
    return ok ? 0 : -1;
}


/* The changelog topic, once, at the first assignment (Kafka answers
 * then): `auto` on librdkafka's mock, or a topic that cannot be made,
 * turns it off; with `true` the latter stops the service. */
void rs_svc_clog_check(rs_service_t *svc) {
    if (!svc->clog || svc->clog_checked) return;
    svc->clog_checked = 1;
    char topic[300], e2[600];
    snprintf(topic, sizeof(topic), "%s-state-changelog",
             svc->app->ingest.group_id);
    int autom = svc->app->state.changelog == RS_STATE_CHANGELOG_AUTO;
    rs_err_t err = RS_OK;
    if (autom && rs_changelog_on_mock(svc->clog, 10000) == 1) {
        /* `riskstream broker`: ~5 MB per partition, no compaction */
        rs_info("service", "state changelog off: the brokers are the "
                "embedded mock (state.changelog: true to use %s anyway)",
                topic);
    } else if ((err = rs_changelog_ensure(svc->clog,
                                          svc->app->ingest.topic_events,
                                          30000, e2, sizeof(e2))) == RS_OK &&
               (!svc->eos || (err = rs_changelog_use_txn(svc->clog, svc->ks,
                                                        e2, sizeof(e2))) ==
                                 RS_OK)) {
        /* exactly-once: its records in the scores' transactions */
        rs_info("service", "state changelog: %s%s", topic,
                svc->eos ? " (in the exactly-once transactions)" : "");
        return;
    } else if (autom) {
        rs_warn("service", "state changelog off: %s", e2);
    } else {
        rs_error("service", "%s", e2);
        svc->clog_err = err;
        rs_strlcpy(svc->clog_errstr, e2, sizeof(svc->clog_errstr));
    }
    rs_changelog_destroy(svc->clog);
    svc->clog = NULL;
    if (svc->sb) { /* standby copies are read from it */
        rs_warn("service", "state.standby %lld off: no state changelog",
                (long long)svc->app->state.standby);
        rs_parts_set_standby(svc->parts, NULL, 0);
        rs_standby_destroy(svc->sb);
        svc->sb = NULL;
    }
}

/* ------------------------------------------ standby copies (standby.h) */

static int rs_svc_sb_foreign(void *o, int32_t p) {
    return rs_standby_has(o, p);
}

rs_err_t rs_svc_standby_new(rs_service_t *svc, const char *bootstrap,
                            char *errstr, size_t errstr_size) {
    const rs_app_conf_t *app = svc->app;
    if (app->state.standby <= 0) return RS_OK;
    /* (state.changelog false: refused by rs_service_new, exit 2) */
    if (!svc->clog) {
        rs_warn("service", "state.standby %lld off: no state changelog (auto "
                "without brokers)", (long long)app->state.standby);
        return RS_OK;
    }
    char topic[300];
    snprintf(topic, sizeof(topic), "%s-state-changelog",
             app->ingest.group_id);
    svc->sb = rs_standby_new(&app->kafka, bootstrap, topic, svc->pstate,
                             errstr, errstr_size);
    if (!svc->sb) return RS_ERR_KAFKA;
    rs_parts_set_standby(svc->parts, svc->sb, (int)app->state.standby);
    rs_changelog_set_foreign(svc->clog, rs_svc_sb_foreign, svc->sb);
    return RS_OK;
}

void rs_svc_standby_tick(rs_service_t *svc) {
    /* the copies' records wait while a feature checkpoint walks the
     * stores (rs_features_part_read refuses then) */
    if (!svc->sb || svc->ckpt_active) return;
    rs_standby_poll(svc->sb, 20);
}

static int64_t rs_svc_p_cl_hwm(void *o, int32_t p) {
    rs_service_t *svc = o;
    rs_svc_clog_check(svc);
    return svc->clog ? rs_changelog_hwm(svc->clog, p) : -1;
}

static int64_t rs_svc_p_cl_end(void *o, int32_t p) {
    rs_service_t *svc = o;
    return svc->clog ? rs_changelog_end(svc->clog, p) : -1;
}

static rs_err_t rs_svc_p_cl_restore(void *o, int32_t p, int64_t from,
                                    rs_pstate_pos_t *pos, uint64_t *nrec,
                                    char *errstr, size_t errstr_size) {
    rs_service_t *svc = o;
    if (!svc->clog) return RS_ERR_NOTFOUND;
    return rs_changelog_restore(svc->clog, p, from, pos, nrec, errstr,
                                errstr_size);
}

static int64_t rs_svc_p_applied(void *o, int topic, int32_t p) {
    rs_service_t *svc = o;
    if (topic < 0 || topic > 1 || p < 0 || p >= RS_SVC_MAX_PARTS) return -1;
    return svc->applied[topic * RS_SVC_MAX_PARTS + p];
}

static void rs_svc_p_set_applied(void *o, int topic, int32_t p, int64_t off) {
    rs_service_t *svc = o;
    if (topic < 0 || topic > 1 || p < 0 || p >= RS_SVC_MAX_PARTS) return;
    svc->applied[topic * RS_SVC_MAX_PARTS + p] = off;
    if (off < 0) svc->txn_dirty[topic * RS_SVC_MAX_PARTS + p] = 0;
}

static uint64_t rs_svc_p_log_end(void *o, int32_t p) {
    rs_service_t *svc = o;
    const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
    if (lg) return rs_learnlog_end(lg);
    return p >= 0 && p < RS_STATE_MAX_PARTS && svc->lrestore[p] >= 0
               ? (uint64_t)svc->lrestore[p] : UINT64_MAX; /* unknown */
}

static void rs_svc_p_log_close(void *o, int32_t p) {
    rs_service_t *svc = o;
    if (p < 0 || p >= RS_STATE_MAX_PARTS) return;
    if (rs_state_log_if_open(svc->state, p)) {
        rs_svc_ckpt_settle(svc, 1); /* the I/O thread may sync it */
        if (rs_trainer_detach(svc->tr, p, 30000) != RS_OK) {
            rs_warn("service", "learning log of partition %d stays open: "
                    "the trainer did not let it go", (int)p);
            return;
        }
        rs_state_close_log(svc->state, p);
    }
    svc->lrestore[p] = -1;
    svc->pwm[p] = svc->pwm_sent[p] = INT64_MIN;
    svc->lend_sent[p] = 0;
}

static void rs_svc_p_log_restore(void *o, int32_t p, uint64_t end) {
    rs_service_t *svc = o;
    if (p < 0 || p >= RS_STATE_MAX_PARTS) return;
    rs_svc_p_log_close(o, p); /* rewound when opened next (rs_svc_log) */
    svc->lrestore[p] = end == UINT64_MAX ? -1 : (int64_t)end;
}

static void rs_svc_p_ckpt_abort(void *o) {
    rs_service_t *svc = o;
    rs_svc_ckpt_settle(svc, 0); /* a detached one: committed or dropped */
    if (!svc->ckpt_active) return;
    rs_features_checkpoint_abort(svc->feat);
    svc->ckpt_active = 0;
    svc->ckpt_due_us = rs_clock_mono_us(); /* again, without the moved one */
}

static int rs_svc_p_owns(void *o, int32_t p) {
    rs_service_t *svc = o;
    return rs_ingest_owns(svc->ing, RS_MSG_TOPIC_EVENTS, p) ||
           rs_ingest_owns(svc->ing, RS_MSG_TOPIC_LABELS, p);
}

/* The events partition may still bring an event a label names: it is
 * replaying, or its consumer is behind (a label read ahead of its event
 * after a pause used to be lost for good). */
int rs_svc_p_replaying(void *o, int32_t p) {
    rs_service_t *svc = o;
    return rs_ingest_replaying_part(svc->ing, RS_MSG_TOPIC_EVENTS, p) ||
           rs_ingest_behind(svc->ing, RS_MSG_TOPIC_EVENTS, p);
}

static int rs_svc_p_rebalancing(void *o) {
    return rs_ingest_rebalancing(((rs_service_t *)o)->ing);
}

void rs_svc_p_pos(void *o, int32_t p, rs_pstate_pos_t *pos) {
    pos->events = rs_svc_p_applied(o, RS_MSG_TOPIC_EVENTS, p);
    pos->labels = rs_svc_p_applied(o, RS_MSG_TOPIC_LABELS, p);
    uint64_t e = rs_svc_p_log_end(o, p);
    pos->log_end = e == UINT64_MAX ? 0 : e;
    pos->changelog = -1;
}

void rs_svc_parts_new(rs_service_t *svc) {
    rs_parts_ops_t ops = {
        svc, rs_svc_p_flush, rs_svc_p_applied, rs_svc_p_set_applied,
        rs_svc_p_log_end, rs_svc_p_log_restore, rs_svc_p_log_close,
        rs_svc_p_ckpt_abort, rs_svc_p_owns, rs_svc_p_rebalancing,
        rs_svc_p_cl_hwm, rs_svc_p_cl_end, rs_svc_p_cl_restore};
    svc->parts = rs_parts_new(svc->pstate, &ops);
}

/* Partitions arrive (inside rs_ingest_poll): their state is restored
 * (parts.h), then the learning log of each events partition is opened
 * (rewound to the restored end) and handed to the trainer now rather than
 * at the partition's first event: a new log's first segment is then made
 * by the trainer while the consumer fetches, not by this (the scoring)
 * thread at the first append (learnlog.h Threads).  A log that cannot be
 * opened here is tried again at the first event, which reports it. */
void rs_svc_assign_hook(void *opaque, rs_ingest_start_t *parts, int n) {
    rs_service_t *svc = opaque;
    rs_parts_assign(svc->parts, parts, n);
    for (int i = 0; i < n; i++) {
        int32_t p = parts[i].partition;
        char e2[512];
        if (parts[i].topic != RS_MSG_TOPIC_EVENTS || p < 0 ||
            p >= RS_STATE_MAX_PARTS)
            continue;
        if (!rs_svc_log(svc, p, e2, sizeof(e2)))
            rs_warn("service", "learning log of partition %d not opened at "
                    "its assignment (again at its first event): %s", (int)p,
                    e2);
    }
}

/* Partitions leave (inside rs_ingest_poll): exactly-once commits or
 * aborts its transaction (rs_svc_revoked), then their state is flushed
 * and parked, or dropped if lost (parts.h). */
void rs_svc_revoke_hook(void *opaque, const rs_ingest_pos_t *parts,
                        int n, int lost) {
    rs_service_t *svc = opaque;
    if (svc->eos) rs_svc_revoked(opaque, parts, n, lost);
    rs_parts_revoke(svc->parts, parts, n, lost);
}

