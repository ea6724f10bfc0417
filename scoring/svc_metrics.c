/* svc_metrics.c -- the scoring service's numbers (design note:
 * scoring.h; shared state: service_int.h).
 *
 * The service thread publishes a snapshot of its counters and of every
 * component's stats about every second (rs_svc_periodic, which also
 * runs the progress callback, writes the stats log line and publishes
 * the serving model version to Redis); the Prometheus exposition, the
 * readiness answer and the model list are read from that snapshot.
 *
 * Threads: rs_svc_periodic and rs_service_stats on the service thread;
 * rs_service_prometheus, rs_service_ready and rs_service_models_json on
 * any thread (HTTP), reading the snapshot under snap_lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoring/service_int.h"

void rs_service_stats(const rs_service_t *svc, rs_service_stats_t *st) {
    *st = svc->st;
}

/* ------------------------------------------------------------ metrics */

static void rs_prom_counter(rs_http_buf_t *b, const char *name,
                            const char *help, uint64_t v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name,
                       help, name, name, (unsigned long long)v);
}

static void rs_prom_gauge(rs_http_buf_t *b, const char *name,
                          const char *help, double v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name,
                       help, name, name, v != v ? 0.0 : v);
}

static void rs_prom_hist(rs_http_buf_t *b, const char *name,
                         const char *help, const rs_hist_t *h) {
    static const double le_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
                       name);
    for (size_t i = 0; i < RS_ARRAY_LEN(le_s); i++)
        rs_http_buf_printf(
            b, "%s_bucket{le=\"%g\"} %llu\n", name, le_s[i],
            (unsigned long long)rs_hist_count_le(h, (int64_t)(le_s[i] * 1e6)));
    rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n"
                       "%s_count %llu\n", name, (unsigned long long)h->total,
                       name, h->sum / 1e6, name,
                       (unsigned long long)h->total);
}

void rs_service_prometheus(rs_service_t *svc, rs_http_buf_t *b) {
    struct rs_svc_snap_s *sn = rs_malloc(sizeof(*sn));
    pthread_mutex_lock(&svc->snap_lock);
    memcpy(sn, svc->snap, sizeof(*sn));
    pthread_mutex_unlock(&svc->snap_lock);
    const rs_service_stats_t *st = &sn->st;
    rs_prom_counter(b, "riskstream_events_total",
                    "events consumed (valid)", st->events);
    rs_prom_counter(b, "riskstream_events_scored_total", "events scored",
                    st->scored);
    rs_prom_counter(b, "riskstream_events_rejected_total",
                    "input rejected to the dead-letter topic", st->rejected);
    rs_prom_counter(b, "riskstream_labels_total", "labels consumed",
                    st->labels);
    rs_prom_counter(b, "riskstream_labels_matched_total",
                    "labels joined to their event's learning record",
                    st->labels_matched);
    rs_prom_counter(b, "riskstream_duplicates_total",
                    "event ids seen again within service.dedup_window: the "
                    "decision on record published again, flagged",
                    st->duplicates);
    rs_prom_gauge(b, "riskstream_dedup_entries", "events remembered for "
                  "duplicate detection (service.dedup_max)",
                  (double)sn->dds.entries);
    rs_prom_counter(b, "riskstream_dedup_evictions_total",
                    "remembered events forgotten before the end of "
                    "service.dedup_window (table full)", sn->dds.evictions);
    rs_prom_counter(b, "riskstream_events_future_total",
                    "events dated beyond topics.future_skew, dead-lettered",
                    sn->is.future);
    rs_prom_counter(b, "riskstream_dlq_delivered_total",
                    "rejected input acknowledged by the dead-letter topic",
                    sn->is.dlq_delivered);
    rs_prom_counter(b, "riskstream_dlq_delivery_failures_total",
                    "dead-letter deliveries that failed (each is retried)",
                    sn->is.dlq_failed);
    rs_prom_counter(b, "riskstream_dlq_lost_total",
                    "dead letters given up (refused for good; logged at "
                    "error)", sn->is.dlq_lost);
    rs_http_buf_printf(b, "# HELP riskstream_decisions_total scored events "
                       "by decision\n# TYPE riskstream_decisions_total "
                       "counter\n");
    rs_http_buf_printf(b, "riskstream_decisions_total{decision=\"review\"} "
                       "%llu\nriskstream_decisions_total{decision=\"decline\"} "
                       "%llu\nriskstream_decisions_total{decision=\"alert\"} "
                       "%llu\n", (unsigned long long)st->reviews,
                       (unsigned long long)st->declines,
                       (unsigned long long)st->alerts);
    rs_prom_hist(b, "riskstream_e2e_latency_seconds",
                 "event produce timestamp to score produced", &st->e2e_us);
    rs_prom_hist(b, "riskstream_processing_latency_seconds",
                 "poll to score produced", &st->proc_us);
    rs_prom_hist(b, "riskstream_fetch_latency_seconds",
                 "event produce timestamp to polled (broker, fetch, the "
                 "consumer's queue)", &st->fetch_us);
    rs_prom_hist(b, "riskstream_delivery_latency_seconds",
                 "per batch: scores handed to the producer to acknowledged "
                 "by Kafka and written to Redis (at-least-once)",
                 &st->deliver_us);
    {
        static const int le_n[] = {1, 4, 16, 64, 128, 256, 512, 1024, 4096};
        const char *nm = "riskstream_batch_messages";
        const rs_hist_t *h = &st->batch_msgs;
        rs_http_buf_printf(b, "# HELP %s messages per poll (the batch size "
                           "follows the backlog, up to topics.batch_max)\n"
                           "# TYPE %s histogram\n", nm, nm);
        for (size_t i = 0; i < RS_ARRAY_LEN(le_n); i++)
            rs_http_buf_printf(b, "%s_bucket{le=\"%d\"} %llu\n", nm, le_n[i],
                               (unsigned long long)rs_hist_count_le(h,
                                                                    le_n[i]));
        rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.0f\n"
                           "%s_count %llu\n", nm,
                           (unsigned long long)h->total, nm, h->sum, nm,
                           (unsigned long long)h->total);
    }
    rs_http_buf_printf(b, "# HELP riskstream_consumer_lag messages behind the "
                       "high watermark per input partition\n# TYPE "
                       "riskstream_consumer_lag gauge\n");
    for (int i = 0; i < sn->nlag; i++)
        if (sn->lag[i].lag >= 0)
            rs_http_buf_printf(
                b, "riskstream_consumer_lag{topic=\"%s\",partition=\"%d\"} "
                   "%lld\n",
                sn->lag[i].topic == RS_MSG_TOPIC_LABELS
                    ? svc->app->ingest.topic_labels
                    : svc->app->ingest.topic_events,
                (int)sn->lag[i].partition, (long long)sn->lag[i].lag);
    rs_prom_gauge(b, "riskstream_partitions_assigned",
                  "input partitions assigned to this instance",
                  (double)sn->is.assigned);
    /* ---- task merge (topics.task_merge, ingest/imerge.h; issue 13) ---- */
    if (svc->app->ingest.task_merge) {
        rs_prom_gauge(b, "riskstream_task_merge_held", "input messages read "
                      "and held by the task merge now, waiting for the "
                      "other topic of their task", (double)sn->is.merge_held);
        rs_prom_gauge(b, "riskstream_task_merge_held_max", "most input "
                      "messages the task merge held at once since start",
                      (double)sn->is.merge_held_max);
        rs_prom_counter(b, "riskstream_task_merge_merged_total", "input "
                        "messages handed to scoring by the task merge",
                        sn->is.merge_merged);
        rs_prom_counter(b, "riskstream_task_merge_reordered_total", "input "
                        "messages handed to scoring out of time order within "
                        "their task: each one handed over after a message of "
                        "the other topic that the merge, everything there, "
                        "hands over after it (a topic's messages in their own "
                        "order); read after the merge went on without its "
                        "topic (topics.max_task_idle); every one of a late "
                        "batch",
                        sn->is.merge_reordered);
        rs_prom_gauge(b, "riskstream_task_merge_last_reorder_behind_seconds",
                      "the last reordered message: how far its time is "
                      "behind the newest of the other topic handed over "
                      "ahead of it (0 before any)",
                      (double)sn->is.merge_reorder_behind_ms / 1e3);
        rs_prom_gauge(b, "riskstream_task_merge_last_reorder_late_seconds",
                      "the last reordered message: how late it was read, "
                      "after the first of the newer messages of its task "
                      "handed over ahead of it (a topics.max_task_idle above "
                      "this would have merged it in order; 0 before any)",
                      (double)sn->is.merge_reorder_late_ms / 1e3);
        rs_prom_counter(b, "riskstream_task_merge_paused_total", "input "
                        "partition fetches paused by the task merge (hold "
                        "limit reached)", sn->is.merge_paused);
        rs_prom_counter(b, "riskstream_task_merge_end_checks_total", "input "
                        "partitions the task merge found at their end by the "
                        "high watermark", sn->is.merge_end_checks);
    }
    /* ---- end task merge ---- */
    {
        rs_pstate_stats_t pst;
        rs_pstate_stats(svc->pstate, &pst);
        rs_prom_gauge(b, "riskstream_restore_partitions", "partitions whose "
                      "state is being restored (loaded, or replayed from "
                      "the input); /readyz is 503 meanwhile",
                      (double)(pst.restoring + sn->replaying));
        rs_prom_gauge(b, "riskstream_restore_replay_messages", "input "
                      "messages still to replay to rebuild state (not "
                      "published)", (double)sn->replay_left);
        rs_http_buf_printf(b, "# HELP riskstream_restores_total partition "
                           "states restored, by source\n# TYPE "
                           "riskstream_restores_total counter\n");
        rs_http_buf_printf(b, "riskstream_restores_total{source=\"local\"} "
                           "%llu\nriskstream_restores_total{source="
                           "\"changelog\"} %llu\nriskstream_restores_total"
                           "{source=\"replay\"} %llu\n",
                           (unsigned long long)pst.from_local,
                           (unsigned long long)pst.from_changelog,
                           (unsigned long long)pst.from_replay);
        rs_http_buf_printf(b, "riskstream_restores_total{source=\"standby\"} "
                           "%llu\n", (unsigned long long)pst.from_standby);
        rs_prom_counter(b, "riskstream_restore_keys_total", "entity keys "
                        "restored with partition states", pst.keys_restored);
        rs_http_buf_printf(b, "# HELP riskstream_restore_seconds_total time "
                           "spent restoring partition states (loads; a "
                           "replay runs with scoring)\n# TYPE "
                           "riskstream_restore_seconds_total counter\n"
                           "riskstream_restore_seconds_total %.6f\n",
                           pst.restore_s_total);
        rs_prom_counter(b, "riskstream_partition_checkpoints_total",
                        "partition checkpoints written (a partition left)",
                        pst.saves);
        rs_prom_counter(b, "riskstream_partition_drops_total", "partition "
                        "states dropped from memory (left or lost)",
                        pst.drops);
        if (svc->clog) {
            rs_changelog_stats_t cst;
            rs_changelog_stats(svc->clog, &cst);
            rs_prom_counter(b, "riskstream_changelog_records_total",
                            "state changelog records produced (markers and "
                            "tombstones included)", cst.records);
            rs_prom_counter(b, "riskstream_changelog_bytes_total",
                            "state changelog key + value bytes produced",
                            cst.bytes);
            rs_prom_counter(b, "riskstream_changelog_failures_total",
                            "state changelog records not written (logged)",
                            cst.failed);
            rs_prom_gauge(b, "riskstream_changelog_staged_bytes",
                          "changelog records waiting for their batch to be "
                          "delivered", (double)cst.staged_bytes);
            rs_prom_counter(b, "riskstream_restore_changelog_records_total",
                            "changelog records applied by restores",
                            cst.restored);
        }
        if (svc->sb) { /* state.standby (standby.h) */
            rs_standby_stats_t sbs;
            rs_standby_stats(svc->sb, &sbs);
            rs_prom_gauge(b, "riskstream_standby_partitions", "standby "
                          "copies kept here (partitions owned elsewhere)",
                          (double)sbs.partitions);
            rs_prom_gauge(b, "riskstream_standby_lag_records", "changelog "
                          "records after the standby copies' last applied "
                          "markers, summed", (double)sbs.lag);
            rs_prom_gauge(b, "riskstream_standby_lag_records_max", "the "
                          "largest standby lag of one partition",
                          (double)sbs.lag_max);
            rs_prom_counter(b, "riskstream_standby_records_total", "changelog "
                            "records applied to standby copies", sbs.records);
            rs_prom_counter(b, "riskstream_standby_taken_total", "standby "
                            "copies taken over by an assignment", sbs.taken);
            rs_prom_counter(b, "riskstream_standby_warm_total", "revoked "
                            "partitions kept warm as standby copies",
                            sbs.warm_adds);
            rs_prom_counter(b, "riskstream_standby_cold_total", "standby "
                            "copies started from the changelog's start",
                            sbs.cold_adds);
        }
    }
    rs_prom_counter(b, "riskstream_offset_resets_total",
                    "consumer offsets out of range, reset by policy",
                    sn->is.offset_resets);
    rs_http_buf_printf(b, "# HELP riskstream_model_info model serving the "
                       "scores\n# TYPE riskstream_model_info gauge\n"
                       "riskstream_model_info{version=\"%s\"} 1\n",
                       st->model_version); /* the version scoring (the
                                            * snapshot), not S's own */
    rs_prom_counter(b, "riskstream_model_updates_total",
                    "online learning steps (trainer thread)",
                    sn->ts.model.updates);
    rs_prom_counter(b, "riskstream_model_versions_published_total",
                    "model versions published by the trainer",
                    sn->ts.published);
    rs_prom_counter(b, "riskstream_model_rollbacks_total",
                    "rollbacks to a stored version", sn->ts.rollbacks);
    rs_prom_counter(b, "riskstream_model_store_errors_total",
                    "version files that could not be saved",
                    sn->ts.store_errors);
    if (svc->msync) rs_msync_metrics(svc->msync, b); /* model sync */
    rs_prom_gauge(b, "riskstream_model_train_queue", "learning records "
                  "waiting for the trainer", (double)sn->ts.depth);
    rs_prom_counter(b, "riskstream_model_train_waits_total",
                    "scoring-thread waits for room in the trainer queue",
                    st->train_waits);
    const rs_learner_stats_t *ls = &sn->ts.learner;
    rs_prom_gauge(b, "riskstream_learning_log_records", "learning records "
                  "kept in the learning logs", (double)sn->ts.log_records);
    rs_prom_gauge(b, "riskstream_learning_log_bytes", "bytes of the learning "
                  "log files", (double)sn->ts.log_bytes);
    rs_prom_gauge(b, "riskstream_learning_log_unresolved", "learning records "
                  "waiting for a label or maturity",
                  (double)sn->ts.log_pending);
    rs_learnlog_totals_t llt; /* the logs' segments (learnlog.h) */
    rs_learnlog_totals(&llt);
    rs_http_buf_printf(b, "# HELP riskstream_learning_log_segments_total "
                       "learning-log segments begun, by who made them: the "
                       "scoring thread itself (none was ready) or ahead "
                       "(the trainer; renamed into place only)\n# TYPE "
                       "riskstream_learning_log_segments_total counter\n"
                       "riskstream_learning_log_segments_total{made="
                       "\"scoring\"} %llu\nriskstream_learning_log_"
                       "segments_total{made=\"ahead\"} %llu\n",
                       (unsigned long long)llt.begun_made,
                       (unsigned long long)llt.begun_ready);
    rs_prom_counter(b, "riskstream_learning_log_rolls_total", "learning-log "
                    "segments begun because the one before was full",
                    llt.rolls);
    rs_prom_counter(b, "riskstream_learning_log_spares_total", "learning-log "
                    "segments made ahead by the trainer", llt.prepared);
    rs_prom_counter(b, "riskstream_learning_log_spares_dropped_total",
                    "learning-log segments made ahead and never begun "
                    "(a rewind, a close, the scoring thread was first)",
                    llt.dropped);
    rs_prom_counter(b, "riskstream_learning_log_spare_errors_total",
                    "learning-log segments that could not be made ahead "
                    "(the scoring thread tries at the roll)",
                    llt.prep_errors);
    rs_prom_counter(b, "riskstream_learning_log_segments_deleted_total",
                    "learning-log segments deleted by retention",
                    llt.deleted);
    rs_prom_gauge(b, "riskstream_learning_log_segments", "learning-log "
                  "segments kept by the open logs", (double)llt.segments);
    rs_http_buf_printf(b, "# HELP riskstream_learned_total learning steps by "
                       "cause\n# TYPE riskstream_learned_total counter\n");
    rs_http_buf_printf(b, "riskstream_learned_total{cause=\"positive_label\"} "
                       "%llu\nriskstream_learned_total{cause=\"negative_label\"} "
                       "%llu\nriskstream_learned_total{cause=\"matured\"} %llu\n"
                       "riskstream_learned_total{cause=\"correction\"} %llu\n",
                       (unsigned long long)(ls->positives - ls->corrections),
                       (unsigned long long)ls->negatives,
                       (unsigned long long)ls->matured,
                       (unsigned long long)ls->corrections);
    rs_prom_counter(b, "riskstream_labels_unknown_total", "labels without a "
                    "learning record (never scored here, or older than the "
                    "log keeps)", ls->unknown);
    rs_prom_counter(b, "riskstream_labels_repeated_total", "labels for an "
                    "event labelled before (ignored)", ls->repeats);
    if (svc->app->maint.enabled && svc->app->maint.rehearsal) {
        /* maintenance.rehearsal (learner.h; restored from the checkpoint) */
        rs_prom_gauge(b, "riskstream_rehearsal_failures", "failures the "
                      "trainer's rehearsal counts (its n)",
                      (double)ls->reh_failures);
        rs_prom_gauge(b, "riskstream_rehearsal_positives", "failure "
                      "positives kept to rehearse", (double)ls->reh_kept);
        rs_prom_counter(b, "riskstream_rehearsals_total", "replay steps on a "
                        "kept failure positive", ls->rehearsals);
        rs_prom_counter(b, "riskstream_checkpoint_rehearsal_behind_total",
                        "checkpoints taken with failures read before them "
                        "not yet in the trainer's rehearsal state",
                        st->checkpoint_reh_behind);
    }
    rs_prom_counter(b, "riskstream_labels_beyond_horizon_total", "labels that "
                    "came later than the label horizon", ls->beyond_horizon);
    rs_prom_gauge(b, "riskstream_label_horizon_seconds", "events unlabelled "
                  "this long are learned as negatives",
                  (double)ls->horizon_ms / 1000.0);
    {
        static const double le[] = {3600, 21600, 86400, 259200, 604800,
                                    1209600, 2592000, 5184000, 7776000,
                                    10368000};
        const rs_hist_t *h = &sn->ts.delays;
        rs_http_buf_printf(b, "# HELP riskstream_label_delay_seconds label "
                           "time minus event time of joined labels\n# TYPE "
                           "riskstream_label_delay_seconds histogram\n");
        for (size_t i = 0; i < RS_ARRAY_LEN(le); i++)
            rs_http_buf_printf(b, "riskstream_label_delay_seconds_bucket{le=\"%g\"} "
                               "%llu\n", le[i], (unsigned long long)
                               rs_hist_count_le(h, (int64_t)le[i]));
        rs_http_buf_printf(b, "riskstream_label_delay_seconds_bucket{le=\"+Inf\"} "
                           "%llu\nriskstream_label_delay_seconds_sum %.0f\n"
                           "riskstream_label_delay_seconds_count %llu\n",
                           (unsigned long long)h->total, h->sum,
                           (unsigned long long)h->total);
    }
    rs_prom_gauge(b, "riskstream_model_drift_psi", "score PSI, recent vs "
                  "reference window", sn->ms.drift_psi);
    rs_prom_gauge(b, "riskstream_model_drift_high", "1: all layers learn, "
                  "0: head and gates only", (double)sn->ts.model.drift_high);
    rs_prom_counter(b, "riskstream_explained_total",
                    "scores published with an explanation "
                    "(service.explain_min_score)", st->explained);
    rs_prom_counter(b, "riskstream_inputs_logged_total",
                    "scoring inputs stored for audit --rescore",
                    st->inputs_logged);
    rs_prom_counter(b, "riskstream_events_replayed_total",
                    "events re-read below the committed offset after a "
                    "restart: state rebuilt, not published again",
                    st->replayed);
    rs_prom_counter(b, "riskstream_transactions_committed_total",
                    "exactly-once transactions committed", st->txn_commits);
    rs_prom_counter(b, "riskstream_transactions_aborted_total",
                    "exactly-once transactions aborted", st->txn_aborts);
    rs_prom_gauge(b, "riskstream_running_auc", "ROC AUC of scores vs "
                  "resolved labels", rs_auc_roc(&st->auc));
    rs_prom_gauge(b, "riskstream_feature_keys", "live entity keys",
                  (double)sn->fs.entity_keys);
    rs_prom_counter(b, "riskstream_late_events_total",
                    "events beyond the allowed lateness", sn->fs.late);
    rs_prom_counter(b, "riskstream_feature_evictions_total",
                    "keys evicted from a full pool", sn->fs.evictions);
    rs_prom_counter(b, "riskstream_feature_cap_hits_total",
                    "inserts into a key's full history ring", sn->fs.cap_hits);
    if (svc->cp) rs_cpstage_prometheus(svc->cp, b); /* cpstage hook */
    rs_prom_counter(b, "riskstream_checkpoints_total",
                    "feature checkpoints committed", st->checkpoints);
    rs_prom_gauge(b, "riskstream_checkpoint_pause_max_seconds",
                  "longest scoring pause for checkpoint steps",
                  st->checkpoint_step_max_us / 1e6);
    rs_prom_counter(b, "riskstream_redis_errors_total",
                    "failed Redis writes (retried)",
                    sn->rds.write_errors + st->redis_errors);
    rs_prom_gauge(b, "riskstream_redis_buffer_bytes", "score records "
                  "waiting for the Redis writer", (double)sn->rds.buffer_bytes);
    rs_prom_gauge(b, "riskstream_redis_buffer_max_bytes", "size of the Redis "
                  "buffer (redis.buffer_bytes)", (double)sn->rds.buffer_max);
    rs_prom_gauge(b, "riskstream_redis_up", "1 if the last Redis write "
                  "succeeded", (double)sn->redis_ok);
    rs_prom_counter(b, "riskstream_redis_outages_total", "Redis outages "
                    "seen by the writer", sn->rds.outages);
    rs_prom_counter(b, "riskstream_redis_backpressure_waits_total",
                    "consumption pauses for a full Redis buffer",
                    st->redis_waits);
    rs_prom_counter(b, "riskstream_kafka_copied_batches_total",
                    "batches whose records the producer copied (every "
                    "arena set still awaited delivery reports)",
                    st->hold_copies);
    rs_prom_counter(b, "riskstream_kafka_delivery_failures_total",
                    "score deliveries refused or failed (retried)",
                    sn->ks.failed);
    rs_prom_gauge(b, "riskstream_kafka_inflight",
                  "score messages queued, not yet acknowledged",
                  (double)sn->ks.inflight);
    rs_prom_gauge(b, "riskstream_scoring_stalled_seconds",
                  "time without a completed batch while input waits or "
                  "results are in flight (readiness: service.stall_timeout)",
                  (double)sn->stalled_us / 1e6);
    if (svc->al) rs_alerts_prometheus(svc->al, b);
    rs_build_info_prometheus(b);
    free(sn);
}

int rs_service_ready(rs_service_t *svc, const char **why) {
    /* The reason lives in a thread-local buffer: *why stays valid on this
     * thread until its next call. */
    static _Thread_local char buf[200];
    int64_t stall = svc->conf->stall_timeout_ms * 1000, now = rs_clock_mono_us();
    pthread_mutex_lock(&svc->snap_lock);
    int valid = svc->snap->valid, assigned = svc->snap->is.assigned > 0,
        redis = svc->snap->redis_ok;
    int64_t age = now - svc->snap->taken_us, stalled = svc->snap->stalled_us;
    char what[96];
    rs_strlcpy(what, svc->snap->stall_what, sizeof(what));
    int replaying = svc->snap->replaying;
    pthread_mutex_unlock(&svc->snap_lock);
    rs_pstate_stats_t pst;
    rs_pstate_stats(svc->pstate, &pst);
    const char *w = !valid      ? "starting"
                    : !assigned ? "no partitions assigned"
                    : !redis    ? "redis unavailable"
                                : NULL;
    if (!w && svc->cp) rs_cpstage_ready(svc->cp, &w); /* cpstage hook */
    if (!w && (pst.restoring > 0 || replaying > 0)) {
        /* a partition's state is being restored (parts.h) */
        snprintf(buf, sizeof(buf), "restoring the state of %lld "
                 "partition(s)", (long long)(pst.restoring + replaying));
        w = buf;
    }
    if (!w && stall > 0 && age > stall + 2000000) {
        /* The service thread published nothing for that long. */
        snprintf(buf, sizeof(buf), "scoring stalled: the service thread "
                 "has not reported for %.0f s", (double)age / 1e6);
        w = buf;
    } else if (!w && stall > 0 && stalled >= stall) {
        snprintf(buf, sizeof(buf), "scoring stalled: no progress for %.0f s "
                 "(%s)", (double)stalled / 1e6, what);
        w = buf;
    }
    if (why) *why = w;
    return w == NULL;
}

void rs_service_models_json(rs_service_t *svc, rs_http_buf_t *b) {
    char serving[RS_VERSION_MAX];
    pthread_mutex_lock(&svc->snap_lock);
    rs_strlcpy(serving, svc->snap->st.model_version, sizeof(serving));
    pthread_mutex_unlock(&svc->snap_lock);
    rs_trainer_stats_t ts;
    rs_trainer_stats(svc->tr, &ts);
    rs_http_buf_printf(b, "{\"serving\":\"%s\",\"kind\":\"%s\","
                       "\"trainer\":{\"version\":\"%s\",\"updates\":%llu,"
                       "\"published\":%llu,\"queue\":%llu,\"rollbacks\":%llu},"
                       "\"versions\":[", serving, rs_model_kind(svc->model),
                       ts.published_version,
                       (unsigned long long)ts.model.updates,
                       (unsigned long long)ts.published,
                       (unsigned long long)ts.depth,
                       (unsigned long long)ts.rollbacks);
    rs_model_store_entry_t *e = rs_calloc(256, sizeof(*e));
    int n = rs_trainer_list(svc->tr, e, 256);
    for (int i = 0; i < n; i++)
        rs_http_buf_printf(b, "%s{\"version\":\"%s\",\"number\":%llu,"
                           "\"saved_at_ms\":%lld,\"updates\":%llu,"
                           "\"bytes\":%llu}", i ? "," : "", e[i].version,
                           (unsigned long long)e[i].number,
                           (long long)e[i].saved_at_ms,
                           (unsigned long long)e[i].updates,
                           (unsigned long long)e[i].bytes);
    rs_http_buf_printf(b, "]}\n");
    free(e);
}

/* ----------------------------------------------------------- snapshot */

/* Stall detection for readiness (service thread, at each snapshot):
 * progress is a completed batch or commit; idle (no lag, nothing in
 * flight) counts as progress too.  Stalled = no progress for
 * stall_timeout while input waits (lag > 0) or results are in flight. */
static void rs_svc_stall_eval(rs_service_t *svc, struct rs_svc_snap_s *sn,
                              int64_t now_us) {
    sn->lag_total = 0;
    for (int i = 0; i < sn->nlag; i++)
        if (sn->lag[i].lag > 0) sn->lag_total += sn->lag[i].lag;
    int inflight = svc->ring_head != svc->ring_tail || svc->txn_open;
    sn->stalled_us = 0;
    sn->stall_what[0] = '\0';
    if (!sn->lag_total && !inflight) {
        svc->progress_us = now_us;
        return;
    }
    if (!svc->progress_us) svc->progress_us = now_us;
    sn->stalled_us = now_us - svc->progress_us;
    snprintf(sn->stall_what, sizeof(sn->stall_what),
             "%lld message(s) of input waiting, %llu batch(es) in flight%s",
             (long long)sn->lag_total,
             (unsigned long long)(svc->ring_head - svc->ring_tail),
             svc->txn_open ? ", a transaction open" : "");
}

void rs_svc_periodic(rs_service_t *svc, int64_t now_us) {
    svc->st.elapsed_s = (double)(now_us - svc->start_us) / 1e6;
    rs_ingest_stats_t ist;
    rs_ingest_stats(svc->ing, &ist);
    svc->st.assigned = ist.assigned;
    const char *v = rs_model_version(svc->model);
    /* Version metadata goes on the service's own Redis connection: only
     * while the writer finds Redis up, at most every 5 s (a blocking
     * connect timeout must not stall scoring during an outage). */
    if (strcmp(v, svc->last_version) && now_us >= svc->model_meta_next_us &&
        rs_sink_redis_healthy(svc->rd)) {
        char meta[512], err[256];
        rs_trainer_stats_t ts;
        rs_trainer_stats(svc->tr, &ts);
        svc->model_meta_next_us = now_us + 5000000;
        snprintf(meta, sizeof(meta),
                 "{\"model_version\":\"%s\",\"kind\":\"%s\","
                 "\"published_at_ms\":%lld,\"updates\":%llu,"
                 "\"serving_since_ms\":%lld}", v, rs_model_kind(svc->model),
                 (long long)(strcmp(ts.published_version, v)
                                 ? rs_clock_wall_ms()
                                 : ts.published_at_ms),
                 (unsigned long long)ts.model.updates,
                 (long long)rs_clock_wall_ms());
        if (rs_sink_redis_set_model(svc->rd, v, meta, err, sizeof(err)) ==
            RS_OK) {
            rs_strlcpy(svc->last_version, v, sizeof(svc->last_version));
            rs_info("service", "model version %s now scoring", v);
        }
    }
    rs_strlcpy(svc->st.model_version, v, sizeof(svc->st.model_version));
    int snap = now_us >= svc->snap_next_us,
        prog = svc->progress_cb && now_us >= svc->progress_next_us;
    rs_trainer_stats_t *ts = snap || prog ? rs_malloc(sizeof(*ts)) : NULL;
    if (ts) { /* what the trainer resolved: joins, AUC, caught */
        rs_trainer_stats(svc->tr, ts);
        svc->st.labels_matched = ts->learner.joined;
        svc->st.labels_unknown = ts->learner.unknown;
        svc->st.positives = ts->learner.positives;
        svc->st.caught = ts->caught;
        svc->st.auc = ts->auc;
        if (ts->caught_id[0] && svc->example_rank < 3) { /* a caught fraud */
            rs_strlcpy(svc->example_id, ts->caught_id,
                       sizeof(svc->example_id));
            svc->example_rank = 3;
        }
    }
    if (snap) { /* for the metrics endpoint */
        svc->snap_next_us = now_us + 1000000;
        struct rs_svc_snap_s *sn = rs_malloc(sizeof(*sn));
        sn->st = svc->st;
        rs_features_stats(svc->feat, &sn->fs);
        rs_model_stats(svc->model, &sn->ms);
        sn->ts = *ts;
        rs_sink_kafka_stats(svc->ks, &sn->ks);
        rs_sink_redis_stats(svc->rd, &sn->rds);
        rs_ingest_stats(svc->ing, &sn->is);
        if (svc->al) rs_alerts_snapshot(svc->al);
        if (svc->dedup) rs_dedup_stats(svc->dedup, &sn->dds);
        else memset(&sn->dds, 0, sizeof(sn->dds));
        sn->nlag = rs_ingest_lag(svc->ing, sn->lag, (int)RS_ARRAY_LEN(sn->lag));
        sn->replaying = rs_ingest_replaying(svc->ing, &sn->replay_left);
        sn->redis_ok = rs_sink_redis_healthy(svc->rd);
        sn->valid = 1;
        sn->taken_us = now_us;
        rs_svc_stall_eval(svc, sn, now_us);
        pthread_mutex_lock(&svc->snap_lock);
        memcpy(svc->snap, sn, sizeof(*sn));
        pthread_mutex_unlock(&svc->snap_lock);
        free(sn);
    }
    free(ts);
    if (prog) {
        svc->progress_next_us = now_us + svc->progress_interval_us;
        svc->progress_cb(svc->progress_opaque, &svc->st);
    }
    if (svc->conf->stats_interval_ms > 0 && now_us >= svc->stats_next_us) {
        if (svc->stats_next_us) {
            rs_features_stats_t fs;
            rs_features_stats(svc->feat, &fs);
            if (svc->cp) { /* cpstage hook: the keys are in its store */
                rs_cpstage_stats_t *cst = rs_malloc(sizeof(*cst));
                rs_cpstage_stats(svc->cp, cst);
                fs.cp_keys = cst->cp_keys;
                free(cst);
            }
            rs_info("service",
                    "scored=%llu labels=%llu rejected=%llu p50_ms=%.2f "
                    "p99_ms=%.2f auc=%.4f model=%s keys=%llu cp_keys=%llu "
                    "late=%llu evictions=%llu expirations=%llu cap_hits=%llu "
                    "checkpoints=%llu ckpt_max_pause_ms=%.2f batch_mean=%.1f",
                    (unsigned long long)svc->st.scored,
                    (unsigned long long)svc->st.labels,
                    (unsigned long long)svc->st.rejected,
                    rs_hist_quantile(&svc->st.e2e_us, 0.5) / 1000.0,
                    rs_hist_quantile(&svc->st.e2e_us, 0.99) / 1000.0,
                    rs_auc_roc(&svc->st.auc), svc->st.model_version,
                    (unsigned long long)fs.entity_keys,
                    (unsigned long long)fs.cp_keys,
                    (unsigned long long)fs.late,
                    (unsigned long long)fs.evictions,
                    (unsigned long long)fs.expirations,
                    (unsigned long long)fs.cap_hits,
                    (unsigned long long)svc->st.checkpoints,
                    svc->st.checkpoint_step_max_us / 1000.0,
                    rs_hist_mean(&svc->st.batch_msgs));
        }
        svc->stats_next_us = now_us + svc->conf->stats_interval_ms * 1000;
        int64_t left = 0;
        int nrep = rs_ingest_replaying(svc->ing, &left);
        if (nrep) /* restore progress (parts.h: state rebuilt from input) */
            rs_info("state", "restoring: %d partition(s) replaying, %lld "
                    "message(s) left to replay (state only, not published)",
                    nrep, (long long)left);
    }
}

