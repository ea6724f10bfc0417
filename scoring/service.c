/* service.c -- the scoring loop (see scoring.h for the design note).
 *
 * Invariants:
 *  - A batch's input offsets are stored only after every score of the batch
 *    was delivered to Kafka and written to Redis.  Batches complete in
 *    order (rs_sink_kafka_acked() is a watermark), so the offset ring is a
 *    FIFO.
 *  - Features of an event are computed from the state before the event;
 *    labels update feature label-state and the model before the next poll.
 *  - No allocation after rs_service_new(): every array of struct
 *    rs_service_s (service_int.h) is sized from batch_max and the offset
 *    ring is fixed.
 *
 * This file: the configuration table, decisions, the memory check,
 * creation and destruction, the run loop and the small public
 * rs_service_* calls.  The rest of the service, by data flow, shares
 * struct rs_service_s through scoring/service_int.h (private):
 *   svc_batch.c    one polled batch: labels to the trainer, events to
 *                  features -> model -> records -> Kafka + Redis, offsets,
 *                  the exactly-once transaction;
 *   svc_ckpt.c     checkpoints: restore, incremental steps, the I/O
 *                  thread, the final checkpoint;
 *   svc_parts.c    partitions that come and go (parts.h operations, the
 *                  revoke hook, the changelog topic check);
 *   svc_metrics.c  the snapshot for other threads and what reads it
 *                  (Prometheus, readiness, model versions).
 *
 * Threads: scoring.h says it for each public call; the rs_svc_* helpers
 * run on the service thread (the caller of rs_service_run).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "model/coldstart.h"
#include "scoring/service_int.h"

uint64_t rs_memory_limit_override;

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_service_fields[] = {
    {"review_threshold", RS_CONF_DOUBLE, "0.5",
     offsetof(rs_service_conf_t, review_threshold), 0,
     "score >= this is decided review", NULL, 0, 1},
    {"decline_threshold", RS_CONF_DOUBLE, "0.9",
     offsetof(rs_service_conf_t, decline_threshold), 0,
     "score >= this is decided decline", NULL, 0, 1},
    {"alert_threshold", RS_CONF_DOUBLE, "0.7",
     offsetof(rs_service_conf_t, alert_threshold), 0,
     "events of an alert type with score >= this are decided alert", NULL, 0,
     1},
    {"alert_types", RS_CONF_STRING, "sensor",
     offsetof(rs_service_conf_t, alert_types),
     sizeof(((rs_service_conf_t *)0)->alert_types),
     "comma list of event types decided alert/approve (sensors) instead of "
     "approve/review/decline", NULL, 0, 0},
    {"scores_format", RS_CONF_ENUM, "json",
     offsetof(rs_service_conf_t, scores_format), 0,
     "encoding of records on the scores and alerts topics", "json|protobuf",
     0, 0},
    {"explain", RS_CONF_BOOL, "true", offsetof(rs_service_conf_t, explain), 0,
     "explain every score (contributions, attended events, experts, "
     "reasons); false = score only (see the bench for the cost)", NULL, 0, 0},
    {"explain_top", RS_CONF_INT, "5", offsetof(rs_service_conf_t, explain_top),
     0, "feature contributions kept in each explanation", NULL, 0,
     RS_MAX_CONTRIB},
    {"explain_attended", RS_CONF_INT, "3",
     offsetof(rs_service_conf_t, explain_attended), 0,
     "attended past events kept in each explanation (sequence model)", NULL,
     0, RS_MAX_ATTEND},
    {"stats_interval", RS_CONF_DURATION, "10s",
     offsetof(rs_service_conf_t, stats_interval_ms), 0,
     "period of the stats log line; 0 = off", NULL, 0, 0},
    {"max_events", RS_CONF_INT, "0", offsetof(rs_service_conf_t, max_events),
     0, "stop after this many scored events; 0 = run until signalled", NULL,
     0, 0},
    {"exit_idle", RS_CONF_DURATION, "0",
     offsetof(rs_service_conf_t, exit_idle_ms), 0,
     "stop after this long without input; 0 = never", NULL, 0, 0},
    {"model_path", RS_CONF_STRING, "", offsetof(rs_service_conf_t, model_path),
     sizeof(((rs_service_conf_t *)0)->model_path),
     "start from this model file; empty = a new model", NULL, 0, 0},
    {"model_save_path", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, model_save_path),
     sizeof(((rs_service_conf_t *)0)->model_save_path),
     "save the model here at shutdown; empty = do not save", NULL, 0, 0},
    {"checkpoint_path", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, checkpoint_path),
     sizeof(((rs_service_conf_t *)0)->checkpoint_path),
     "feature-state checkpoint file (with the input offsets it matches); "
     "restored at start, written periodically and at shutdown; empty = off",
     NULL, 0, 0},
    {"checkpoint_interval", RS_CONF_DURATION, "60s",
     offsetof(rs_service_conf_t, checkpoint_interval_ms), 0,
     "period of incremental checkpoints", NULL, 1000, 86400000},
    {"checkpoint_step", RS_CONF_INT, "2048",
     offsetof(rs_service_conf_t, checkpoint_step), 0,
     "key slots serialized per checkpoint step, at most: fewer while one "
     "step takes more than half of checkpoint_pause", NULL, 16, 1048576},
    {"checkpoint_pause", RS_CONF_DURATION, "2ms",
     offsetof(rs_service_conf_t, checkpoint_pause_ms), 0,
     "checkpoint steps run between two batches while the next one (timed "
     "by the last) still ends within this (bounds the pause checkpointing "
     "adds to scoring; riskstream_checkpoint_pause_max_seconds shows it)",
     NULL, 1, 1000},
    {"explain_min_score", RS_CONF_DOUBLE, "0",
     offsetof(rs_service_conf_t, explain_min_score), 0,
     "explain only scores >= this (0 = every score); the others carry an "
     "empty explanation (riskstream_explained_total counts the explained)",
     NULL, 0, 1},
    {"log_inputs", RS_CONF_ENUM, "flagged",
     offsetof(rs_service_conf_t, log_inputs), 0,
     "scoring inputs kept in Redis for `audit --rescore`: none, flagged "
     "(decisions other than approve) or all (~9 KB per event with the "
     "default seq sizes)", "none|flagged|all", 0, 0},
    {"delivery", RS_CONF_ENUM, "at_least_once",
     offsetof(rs_service_conf_t, delivery), 0,
     "at_least_once: input offsets committed after Kafka acks and the Redis "
     "write; exactly_once: scores and input offsets in one Kafka "
     "transaction (consumers of the scores topic read_committed)",
     "at_least_once|exactly_once", 0, 0},
    {"transactional_id", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, transactional_id),
     sizeof(((rs_service_conf_t *)0)->transactional_id),
     "exactly_once: the producer's transactional.id, stable across restarts "
     "and unique per instance; \"\" = riskstream-<topics.group_id>", NULL,
     0, 0},
    {"transaction_interval", RS_CONF_DURATION, "100ms",
     offsetof(rs_service_conf_t, transaction_interval_ms), 0,
     "exactly_once: a transaction is committed this often (scores become "
     "visible to read_committed consumers then)", NULL, 1, 60000},
    {"commit_timeout", RS_CONF_DURATION, "30s",
     offsetof(rs_service_conf_t, commit_timeout_ms), 0,
     "exactly_once: longest wait for Redis to hold a transaction's scores "
     "before the commit; past it the transaction is aborted and the service "
     "stops (exit 1) to resume from the committed offsets after a restart "
     "(keep it below the producer's transaction.timeout.ms, 60 s)", NULL,
     1000, 3600000},
    {"stop_timeout", RS_CONF_DURATION, "20s",
     offsetof(rs_service_conf_t, stop_timeout_ms), 0,
     "graceful stop (SIGTERM): longest time, all waits together, for "
     "in-flight scores to reach Kafka and Redis; what is still undelivered "
     "then is named in the log and read again after the restart (no final "
     "checkpoint)", NULL, 100, 600000},
    {"stall_timeout", RS_CONF_DURATION, "60s",
     offsetof(rs_service_conf_t, stall_timeout_ms), 0,
     "/readyz answers 503 when scoring made no progress for this long while "
     "input is waiting (consumer lag > 0) or results are in flight; 0 = "
     "off", NULL, 0, 86400000},
    {"dedup_window", RS_CONF_DURATION, "24h",
     offsetof(rs_service_conf_t, dedup_window_ms), 0,
     "an event whose (entity_id, id) was scored within this much event time "
     "(and is still among the last dedup_max events) is a duplicate: it "
     "gets the decision on record again (same score and model version, "
     "flags bit 1) and enters neither the features nor the model a second "
     "time; 0 = off", NULL, 0, 31622400000.0},
    {"dedup_max", RS_CONF_INT, "262144",
     offsetof(rs_service_conf_t, dedup_max), 0,
     "events remembered for duplicate detection (about 40 bytes each, kept "
     "in the checkpoint); the oldest is forgotten first when full", NULL,
     1024, 1073741824},
    {"workers", RS_CONF_INT, "0", offsetof(rs_service_conf_t, workers), 0,
     "threads that decode the input, run the model's forward sharded by "
     "entity (seq with seq.gemm exact), build the explanations and encode "
     "the score records of each batch (the scoring thread is one of them; "
     "features, decisions and the learning-log appends stay on it); 0 = "
     "the number of online cores, 1 = everything on the scoring thread.  "
     "Scores, records and learning records are the same byte for byte "
     "whatever the number", NULL, 0, RS_POOL_MAX},
    {"trace_slow", RS_CONF_DURATION, "0",
     offsetof(rs_service_conf_t, trace_slow_ms), 0,
     "latency debugging: log (info, module service, \"slow turn\") every "
     "turn of the scoring loop whose batch, or whose work between two "
     "batches (delivery reports, model swap, checkpoint steps, metrics), "
     "took at least this long, or one of whose messages waited at least "
     "this long between its production and the consumer's read: the batch "
     "size, the age of its oldest message, the time of each stage (the "
     "counterparty stage's wait inside the features); 0 = off (no cost)",
     NULL, 0, 60000},
};

rs_err_t rs_app_conf_init(rs_app_conf_t *app, char *errstr,
                          size_t errstr_size) {
    memset(app, 0, sizeof(*app));
    rs_kv_init(&app->kafka);
    app->conf = rs_conf_new();
    rs_conf_section_t *secs = app->secs;
    secs[0] = (rs_conf_section_t){"service", "decisions, explanations, limits",
                                  rs_service_fields,
                                  (int)RS_ARRAY_LEN(rs_service_fields),
                                  &app->service};
    rs_ingest_conf_section(&secs[1], &app->ingest);
    rs_redis_conf_section(&secs[2], &app->redis);
    rs_features_conf_section(&secs[3], &app->features);
    rs_model_conf_section(&secs[4], &app->model);
    rs_seq_conf_section(&secs[5], &app->model);
    rs_http_conf_section(&secs[6], &app->http);
    rs_state_conf_section(&secs[7], &app->state);
    rs_msync_conf_section(&secs[8], &app->sync);
    rs_maint_conf_init(&app->maint);
    rs_maint_conf_section(&secs[9], &app->maint);
    rs_cpstage_conf_section(&secs[10], &app->cpstage);
    rs_err_t err = RS_OK;
    for (int i = 0; err == RS_OK && i < 11; i++)
        err = rs_conf_add_section(app->conf, &secs[i], errstr, errstr_size);
    /* features.specs / features.extra_specs: the declarative feature list */
    if (err == RS_OK)
        err = rs_features_conf_add_specs(app->conf, &app->features, errstr,
                                         errstr_size);
    rs_conf_add_passthrough(app->conf, "kafka",
                            "librdkafka properties, passed to "
                            "rd_kafka_conf_set() as they are",
                            &app->kafka);
    return err;
}

void rs_app_conf_resolve(rs_app_conf_t *app) {
    if (!app->features.label_maturity)
        app->features.label_maturity = app->model.label_delay;
}

void rs_app_conf_destroy(rs_app_conf_t *app) {
    rs_conf_destroy(app->conf);
    rs_kv_free(&app->kafka);
    app->conf = NULL;
}

/* ---------------------------------------------------------- decisions */

static int rs_type_in_list(const char *list, const char *type) {
    size_t tl = strlen(type);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *te = e;
        while (te > p && te[-1] == ' ') te--;
        if ((size_t)(te - p) == tl && tl && !strncmp(p, type, tl)) return 1;
        p = e;
    }
    return 0;
}

rs_decision_t rs_decide(const rs_service_conf_t *conf, const char *type,
                        double score) {
    if (type && rs_type_in_list(conf->alert_types, type))
        return score >= conf->alert_threshold ? RS_DECISION_ALERT
                                              : RS_DECISION_APPROVE;
    if (score >= conf->decline_threshold) return RS_DECISION_DECLINE;
    if (score >= conf->review_threshold) return RS_DECISION_REVIEW;
    return RS_DECISION_APPROVE;
}

/* ------------------------------------------------------ memory check */

static void rs_svc_fmt_bytes(uint64_t b, char *buf, size_t size) {
    if (b >= (1ULL << 30))
        snprintf(buf, size, "%.1f GiB", (double)b / (double)(1ULL << 30));
    else if (b >= (1ULL << 20))
        snprintf(buf, size, "%.1f MiB", (double)b / (double)(1ULL << 20));
    else
        snprintf(buf, size, "%.1f KiB", (double)b / 1024.0);
}

rs_err_t rs_app_conf_mem_check(const rs_app_conf_t *app, uint64_t *total,
                               char *errstr, size_t errstr_size) {
    rs_mem_item_t it[20]; /* 16 for features and model, then ours */
    int n = 0, k = 0, dim = 0;
    /* cpstage hook: the scoring engine's other tables get one slot, the
     * stage's store holds them (counted below) */
    int want_cp = rs_cpstage_wanted(&app->cpstage, &app->features);
    rs_features_conf_t fmain = app->features;
    if (want_cp) fmain.max_counterparties = 1;
    rs_err_t err = rs_features_conf_mem(&fmain, it, 16, &k, &dim,
                                        errstr, errstr_size);
    if (err != RS_OK) return err;
    n += k;
    n += rs_model_conf_mem(&app->model, dim, it + n, 16 - n);
    it[n++] = (rs_mem_item_t){"model.train_queue",
                              (uint64_t)(app->model.train_queue > 0
                                             ? app->model.train_queue
                                             : 1) *
                                  sizeof(rs_trainer_msg_t)};
    it[n++] = (rs_mem_item_t){"redis.buffer_bytes",
                              (uint64_t)app->redis.buffer_bytes};
    if (app->service.dedup_window_ms > 0)
        it[n++] = (rs_mem_item_t){
            "service.dedup_max",
            rs_dedup_bytes((uint64_t)app->service.dedup_max)};
    if (app->maint.enabled) { /* alerts.h: two machine tables, payloads */
        uint64_t slots = 1;
        while (slots < (uint64_t)app->maint.max_machines * 2) slots <<= 1;
        it[n++] = (rs_mem_item_t){
            "maintenance.max_machines",
            slots * 72 + (uint64_t)app->maint.max_machines * 168 +
                (uint64_t)app->ingest.batch_max * 2600};
    }
    /* Per-batch arrays (messages, vectors, records, input logs). */
    if (want_cp)
        it[n++] = (rs_mem_item_t){"features.max_counterparties and "
                                  "features.label_index (counterparty "
                                  "stage's store; cpstage.enabled)",
                                  rs_cpstage_conf_mem(&app->features)};
    uint64_t B = (uint64_t)app->ingest.batch_max;
    it[n++] = (rs_mem_item_t){
        "topics.batch_max",
        B * (sizeof(rs_msg_t) + sizeof(rs_score_t) + sizeof(rs_model_input_t) +
             sizeof(rs_model_output_t) + 8 * (uint64_t)dim + 16384)};
    uint64_t sum = 0;
    int big = 0;
    for (int i = 0; i < n; i++) {
        sum += it[i].bytes;
        if (it[i].bytes > it[big].bytes) big = i;
    }
    if (total) *total = sum;
    char what[64];
    uint64_t lim = rs_memory_limit_override ? rs_memory_limit_override
                                            : rs_mem_limit(what, sizeof(what));
    if (rs_memory_limit_override) rs_strlcpy(what, "limit set by the caller",
                                             sizeof(what));
    if (sum <= lim) return RS_OK;
    char need[32], have[32], bb[32], rest[256] = "";
    rs_svc_fmt_bytes(sum, need, sizeof(need));
    rs_svc_fmt_bytes(lim, have, sizeof(have));
    rs_svc_fmt_bytes(it[big].bytes, bb, sizeof(bb));
    size_t rl = 0;
    for (int i = 0; i < n && rl + 1 < sizeof(rest); i++) {
        if (i == big || it[i].bytes * 20 < sum) continue; /* < 5 % */
        char b2[32];
        rs_svc_fmt_bytes(it[i].bytes, b2, sizeof(b2));
        rl += (size_t)snprintf(rest + rl, sizeof(rest) - rl, "; %s %s",
                               it[i].key, b2);
    }
    return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                   "the configuration needs %s (%llu bytes), more than this "
                   "machine can hold (%s: %s): %s needs %s (%llu bytes)%s; "
                   "lower it", need, (unsigned long long)sum, what, have,
                   it[big].key, bb, (unsigned long long)it[big].bytes, rest);
}

/* ------------------------------------------------------------- create */

static rs_model_t *rs_svc_newest_stored(rs_model_t *t,
                                        const rs_model_conf_t *tconf,
                                        int dim, const char *const *names);

rs_service_t *rs_service_new(const rs_app_conf_t *app, const char *bootstrap,
                             rs_err_t *err_out, char *errstr,
                             size_t errstr_size) {
    rs_err_t err = RS_OK;
    rs_service_t *svc = rs_calloc(1, sizeof(*svc));
    svc->app = app;
    svc->conf = &app->service;
    svc->batch_max = (int)app->ingest.batch_max;
    if (app->service.decline_threshold < app->service.review_threshold) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "service.decline_threshold (%g) is below "
                      "service.review_threshold (%g)",
                      app->service.decline_threshold,
                      app->service.review_threshold);
        goto fail;
    }
    if (app->state.standby > 0 && /* standby.h: read from the changelog */
        app->state.changelog == RS_STATE_CHANGELOG_OFF) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "state.standby is %lld but state.changelog is false: "
                      "standby copies are read from the state changelog (set "
                      "state.changelog: true, or state.standby: 0)",
                      (long long)app->state.standby);
        goto fail;
    }

    /* Configuration errors that would only show once clients or buffers
     * exist: a bad `kafka:` property, sizes the machine cannot hold (an
     * allocation failing later aborts: exit 134). */
    if (rs_kafka_conf_check(&app->kafka, errstr, errstr_size) != RS_OK) {
        err = RS_ERR_CONFIG;
        goto fail;
    }
    uint64_t mem_total = 0;
    if ((err = rs_app_conf_mem_check(app, &mem_total, errstr,
                                     errstr_size)) != RS_OK) {
        err = RS_ERR_CONFIG;
        goto fail;
    }
    {
        char need[32];
        rs_svc_fmt_bytes(mem_total, need, sizeof(need));
        rs_info("service", "this configuration preallocates about %s", need);
    }

    /* One scoring thread per service: OpenBLAS must not spawn its own pool
     * per call (micro-batches are small; threads would only add jitter). */
    openblas_set_num_threads(1);
    /* cpstage hook: with the counterparty stage the engine here keeps the
     * entity table only (its other tables get one slot). */
    int want_cp = rs_cpstage_wanted(&app->cpstage, &app->features);
    {
        rs_features_conf_t fc = app->features;
        if (want_cp) fc.max_counterparties = 1;
        svc->feat = rs_features_new(&fc, errstr, errstr_size);
    }
    if (!svc->feat) { err = RS_ERR_CONFIG; goto fail; }
    if (want_cp) rs_features_set_scope(svc->feat, RS_FEATURES_SCOPE_ENTITY);
    svc->dim = rs_features_dim(svc->feat);
    const char *names[512];
    if (svc->dim > (int)RS_ARRAY_LEN(names)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "too many features (%d)", svc->dim);
        goto fail;
    }
    for (int i = 0; i < svc->dim; i++)
        names[i] = rs_features_name(svc->feat, i);

    /* The trainer T learns: it reads the learning logs and needs no
     * entity caches, so its buffers are minimal.  The scorer S has T's
     * architecture and the configured buffers. */
    rs_model_conf_t tconf = app->model;
    tconf.seq.max_entities = tconf.batch_max + 1; /* the minimum allowed */
    rs_model_t *t = NULL;
    if (app->service.model_path[0]) {
        err = rs_model_load(app->service.model_path, &tconf, &t, errstr,
                            errstr_size);
        if (err != RS_OK) {
            if (err != RS_ERR_IO) err = RS_ERR_CONFIG;
            goto fail;
        }
        /* The model must have been trained on exactly these features. */
        char e2[256];
        if (rs_model_check_names(t, svc->dim, names, e2, sizeof(e2)) !=
            RS_OK) {
            /* label-aware windows end at the declared label delay
             * (features.label_maturity): a model trained with another
             * delay has other feature names */
            int off = strstr(e2, "_off") != NULL;
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "model %s: %s%s", app->service.model_path, e2,
                          off ? " (label-aware features end at the declared "
                                "label delay: serve with the "
                                "model.label_delay the model was trained "
                                "with)"
                              : "");
            rs_model_destroy(t);
            goto fail;
        }
    } else {
        t = rs_model_new(&tconf, svc->dim, names, errstr, errstr_size);
        if (!t) { err = RS_ERR_CONFIG; goto fail; }
    }

    /* The state directory: checkpoint, model store, learning logs. */
    {
        rs_learnlog_meta_t meta;
        rs_model_lrec_meta(t, &meta);
        svc->state = rs_state_new(&app->state, app->ingest.group_id,
                                  app->state_ephemeral, &meta,
                                  app->model.log_segment, errstr,
                                  errstr_size);
        if (!svc->state) {
            rs_model_destroy(t);
            err = RS_ERR_IO;
            goto fail;
        }
        svc->lrec_size = meta.rec_size;
    }
    if (app->service.checkpoint_path[0])
        rs_strlcpy(svc->ckpt_path, app->service.checkpoint_path,
                   sizeof(svc->ckpt_path));
    else
        rs_state_path(svc->state, "checkpoint", svc->ckpt_path,
                      sizeof(svc->ckpt_path));
    if (!tconf.store_dir[0])
        rs_state_path(svc->state, "models", tconf.store_dir,
                      sizeof(tconf.store_dir));
    char delays[700];
    rs_state_path(svc->state, "label-delays", delays, sizeof(delays));
    {
        /* refuse a configuration that would learn every fraud as genuine
         * (what was observed before counts too) */
        rs_hist_t *h = rs_malloc(2 * sizeof(rs_hist_t));
        char e2[600];
        if (rs_learner_delays_load(delays, &h[0], &h[1], e2, sizeof(e2)))
            rs_warn("service", "%s", e2);
        err = rs_learner_check_conf(&app->model, &h[1], errstr, errstr_size);
        free(h);
        if (err) {
            rs_model_destroy(t);
            goto fail;
        }
    }
    /* Restart: learning continues from the newest stored version of this
     * model (same features and architecture), unless --model says. */
    if (!app->service.model_path[0])
        t = rs_svc_newest_stored(t, &tconf, svc->dim, names);
    svc->model = rs_model_new_like(t, &app->model, errstr, errstr_size);
    if (!svc->model) {
        rs_model_destroy(t);
        err = RS_ERR_CONFIG;
        goto fail;
    }
    {
        rs_trainer_opts_t to = {app->service.model_save_path, delays,
                                RS_MIN(app->service.review_threshold,
                                       app->service.alert_threshold),
                                NULL,
                                app->maint.enabled ? app->maint.horizon : 0,
                                app->maint.enabled && app->maint.rul
                                    ? rs_maint_rul_cap(&app->maint)
                                    : 0,
                                0};
        if (app->maint.enabled && app->maint.rehearsal) {
            /* maintenance.rehearsal: n0 = the cold-start reference's
             * sensors (coldstart.h) */
            rs_coldstart_t *cs = rs_coldstart_new(names, svc->dim,
                                                  app->maint.alert_threshold);
            to.rehearse_n0 = rs_coldstart_sensors(cs);
            rs_coldstart_destroy(cs);
        }
        /* ---- model sync (modelsync.h): one model across the group */
        rs_trainer_hooks_t hooks;
        if (app->sync.enabled && !app->ingest.brokers[0]) {
            rs_info("service", "sync.enabled: the embedded broker serves "
                    "one instance, nothing to combine");
        } else if (app->sync.enabled) {
            svc->msync = rs_msync_new(&app->sync, &app->kafka, bootstrap,
                                      app->ingest.group_id, tconf.store_dir,
                                      &tconf, &err, errstr, errstr_size);
            if (!svc->msync) {
                rs_model_destroy(t);
                goto fail;
            }
            rs_msync_hooks(svc->msync, &hooks);
            to.hooks = &hooks;
        }
        /* ---- */
        svc->tr = rs_trainer_new(t, &tconf, &to, &err, errstr, errstr_size);
    }
    if (!svc->tr) {
        rs_model_destroy(t);
        goto fail;
    }
    {
        rs_model_weights_t *w = rs_trainer_take(svc->tr);
        err = rs_model_weights_use(svc->model, w);
        rs_model_weights_release(w);
        if (err != RS_OK) {
            rs_errf(errstr, errstr_size, err, "scorer cannot use the "
                    "trainer's weights: %s", rs_err_str(err));
            goto fail;
        }
    }

    if (app->maint.enabled) { /* maintenance: failures, alert policy */
        rs_alerts_opts_t ao = {(int)app->ingest.batch_max,
                               app->features.key_ttl};
        svc->al = rs_alerts_new(&app->maint, &ao, svc->feat, svc->model,
                                svc->tr, errstr, errstr_size);
        if (!svc->al) { err = RS_ERR_CONFIG; goto fail; }
    }

    svc->rd = rs_sink_redis_new(&app->redis, errstr, errstr_size);
    if (!svc->rd) { err = RS_ERR_REDIS; goto fail; }
    /* i12cpu hook: the writer and its ring now, prefaulted while the
     * consumer joins its group (not on the first batches) */
    if ((err = rs_sink_redis_start(svc->rd)) != RS_OK) {
        rs_errf(errstr, errstr_size, err, "redis: cannot start the writer");
        goto fail;
    }
    svc->eos = app->service.delivery == RS_DELIVERY_EXACTLY_ONCE;
    char txn_id[160] = "";
    if (svc->eos) {
        if (app->service.transactional_id[0])
            rs_strlcpy(txn_id, app->service.transactional_id, sizeof(txn_id));
        else
            snprintf(txn_id, sizeof(txn_id), "riskstream-%s",
                     app->ingest.group_id);
    }
    if (svc->eos)
        svc->ks = rs_sink_kafka_new_txn(&app->kafka, bootstrap,
                                        app->ingest.topic_scores,
                                        app->ingest.topic_alerts,
                                        (rs_format_t)app->service.scores_format,
                                        txn_id, errstr, errstr_size);
    else
        svc->ks = rs_sink_kafka_new(&app->kafka, bootstrap,
                                    app->ingest.topic_scores,
                                    app->ingest.topic_alerts,
                                    (rs_format_t)app->service.scores_format,
                                    errstr, errstr_size);
    if (!svc->ks) { err = RS_ERR_KAFKA; goto fail; }
    /* At-least-once: the records go to librdkafka without a copy, from
     * the arena set of their batch, held until the batch is acknowledged
     * (rs_svc_hold_pick).  Exactly-once: the sink keeps its own copies. */
    if (!svc->eos) rs_sink_kafka_set_hold(svc->ks, 1);
    rs_ingest_conf_t icon = app->ingest;
    icon.exactly_once = svc->eos;
    svc->ing = rs_ingest_new(&icon, &app->kafka, bootstrap, errstr,
                             errstr_size);
    if (!svc->ing) { err = RS_ERR_KAFKA; goto fail; }
    if (want_cp) { /* cpstage hook */
        rs_cpstage_opts_t co = {&app->cpstage, &app->features, &icon,
                                &app->kafka, bootstrap,
                                app->service.dedup_window_ms,
                                app->service.dedup_max, svc->eos, 0};
        /* i12cpu3 hook: cpstage.fetch_wait auto needs to know the mock */
        if (app->cpstage.fetch_wait_ms == RS_CONF_AUTO)
            co.on_mock = !app->ingest.brokers[0] ||
                         rs_ingest_on_mock(svc->ing, 1000) == 1;
        svc->cp = rs_cpstage_new(&co, &err, errstr, errstr_size);
        if (!svc->cp) goto fail;
        rs_cpstage_attach(svc->cp, svc->ing); /* cpstage.feed */
    }
    int nwk = (int)app->service.workers;
    if (nwk <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nwk = cores < 1 ? 1 : cores > RS_POOL_MAX ? RS_POOL_MAX : (int)cores;
    }
    svc->wk = rs_workers_new(nwk, svc->dim, &err, errstr, errstr_size);
    if (!svc->wk) goto fail;
    rs_ingest_set_pool(svc->ing, rs_workers_pool(svc->wk));
    /* issue 12.2: the model's forward sharded by entity on the same pool */
    svc->msh = rs_model_shard_new(svc->model, rs_workers_pool(svc->wk),
                                  svc->batch_max, errstr, errstr_size);
    if (!svc->msh) { err = RS_ERR_CONFIG; goto fail; }

    svc->snap = rs_calloc(1, sizeof(*svc->snap));
    pthread_mutex_init(&svc->snap_lock, NULL);
    svc->applied = rs_calloc(2 * RS_SVC_MAX_PARTS, sizeof(int64_t));
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS; i++) svc->applied[i] = -1;
    svc->lpend = rs_calloc(RS_STATE_MAX_PARTS, sizeof(uint32_t));
    svc->pwm = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->pwm_sent = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->lend_sent = rs_calloc(RS_STATE_MAX_PARTS, sizeof(uint64_t));
    svc->lrestore = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->ckpt_logs = rs_calloc(RS_STATE_MAX_PARTS, sizeof(*svc->ckpt_logs));
    for (int i = 0; i < RS_STATE_MAX_PARTS; i++) {
        svc->pwm[i] = svc->pwm_sent[i] = INT64_MIN;
        svc->lrestore[i] = -1;
    }
    if (app->service.dedup_window_ms > 0) {
        if (app->service.dedup_max < app->ingest.batch_max) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "service.dedup_max (%lld) must be at least "
                          "topics.batch_max (%lld)",
                          (long long)app->service.dedup_max,
                          (long long)app->ingest.batch_max);
            goto fail;
        }
        svc->dedup = rs_dedup_new((uint64_t)app->service.dedup_max,
                                  app->service.dedup_window_ms, errstr,
                                  errstr_size);
        if (!svc->dedup) { err = RS_ERR_CONFIG; goto fail; }
    }
    /* Partition-local state (issue 13): stores and ownership, before the
     * instance checkpoint names the partitions it holds. */
    svc->pstate = rs_pstate_new(rs_state_dir(svc->state), svc->feat,
                                svc->model, svc->dedup, errstr, errstr_size);
    if (!svc->pstate) { err = RS_ERR_IO; goto fail; }
    /* maintenance machines follow their partitions (alerts.h) */
    if (svc->al) rs_pstate_set_alerts(svc->pstate, svc->al);
    rs_svc_parts_new(svc);
    {
        /* The state changelog (state.changelog; changelog.h). */
        int on = app->state.changelog == RS_STATE_CHANGELOG_ON ||
                 (app->state.changelog == RS_STATE_CHANGELOG_AUTO &&
                  (app->ingest.brokers[0] ||
                   rs_kv_get(&app->kafka, "bootstrap.servers")));
        if (on) {
            char topic[300];
            snprintf(topic, sizeof(topic), "%s-state-changelog",
                     app->ingest.group_id);
            svc->clog = rs_changelog_new(&app->kafka, bootstrap, topic,
                                         svc->feat, svc->model, svc->dedup,
                                         svc->pstate, svc->batch_max, errstr,
                                         errstr_size);
            if (!svc->clog) { err = RS_ERR_KAFKA; goto fail; }
            /* the topic is checked at the first assignment (Kafka may be
             * unreachable now: serve waits for it) */
        }
        /* Standby replicas (state.standby; standby.h), read from it. */
        if ((err = rs_svc_standby_new(svc, bootstrap, errstr, errstr_size)))
            goto fail;
    }
    {
        /* Tests compare every event's features across deployments
         * (tests/e2e/scaleout.sh): one line per published event. */
        const char *fo = getenv("RS_TEST_FEATURES_OUT");
        if (fo && fo[0] && !(svc->feat_out = fopen(fo, "a")))
            rs_warn("service", "RS_TEST_FEATURES_OUT %s: %s", fo,
                    strerror(errno));
    }
    err = rs_svc_ckpt_restore(svc, errstr, errstr_size);
    if (err != RS_OK) goto fail;

    int B = svc->batch_max, D = svc->dim;
    svc->msgs = rs_calloc((size_t)B, sizeof(*svc->msgs));
    svc->x = rs_aligned_calloc((size_t)B * (size_t)D, sizeof(float));
    svc->contrib = rs_aligned_calloc((size_t)B * (size_t)D, sizeof(float));
    svc->scores = rs_aligned_calloc((size_t)B, sizeof(float));
    svc->min = rs_calloc((size_t)B, sizeof(*svc->min));
    svc->mout = rs_calloc((size_t)B, sizeof(*svc->mout));
    svc->flags = rs_calloc((size_t)B, sizeof(uint32_t));
    svc->ev_msg = rs_calloc((size_t)B, sizeof(int));
    svc->out = rs_calloc((size_t)B, sizeof(rs_score_t));
    svc->pub = rs_calloc((size_t)B, sizeof(int));
    svc->lrec = rs_aligned_calloc((size_t)B, svc->lrec_size);
    svc->ev_log = rs_calloc((size_t)B, sizeof(*svc->ev_log));
    svc->touched = rs_calloc((size_t)B, sizeof(int32_t));
    svc->ev_dd = rs_calloc((size_t)B, sizeof(uint64_t));
    svc->dd_key = rs_calloc((size_t)B, sizeof(uint64_t));
    svc->dup_msg = rs_calloc((size_t)B, sizeof(int));
    svc->dup_dd = rs_calloc((size_t)B, sizeof(uint64_t));
    svc->json = rs_calloc((size_t)B, sizeof(*svc->json));
    svc->json_lens = rs_calloc((size_t)B, sizeof(size_t));
    svc->kbytes = rs_calloc((size_t)B, sizeof(*svc->kbytes));
    svc->klens = rs_calloc((size_t)B, sizeof(size_t));
    if (app->redis.record_format == RS_REDIS_RECORD_COMPACT) {
        svc->recs = rs_calloc((size_t)B, sizeof(*svc->recs));
        svc->rec_lens = rs_calloc((size_t)B, sizeof(size_t));
    }
    if (app->service.log_inputs != RS_LOG_INPUTS_NONE) {
        svc->log_max = rs_model_log_max(svc->model);
        svc->logbuf = rs_aligned_calloc((size_t)B, svc->log_max);
    }
    svc->logs = rs_calloc((size_t)B, sizeof(*svc->logs));
    svc->log_lens = rs_calloc((size_t)B, sizeof(size_t));
    svc->ring = rs_calloc(RS_SVC_RING, sizeof(*svc->ring));
    svc->offs = rs_calloc(RS_SVC_OFFS, sizeof(*svc->offs));
    svc->txn_dirty = rs_calloc(2 * RS_SVC_MAX_PARTS, 1);
    svc->next_seq = 1;
    rs_hist_init(&svc->st.e2e_us);
    rs_hist_init(&svc->st.proc_us);
    rs_hist_init(&svc->st.fetch_us);
    rs_hist_init(&svc->st.deliver_us);
    rs_hist_init(&svc->st.batch_msgs);
    rs_auc_init(&svc->st.auc);
    rs_strlcpy(svc->st.model_version, rs_model_version(svc->model),
               sizeof(svc->st.model_version));
    if (err_out) *err_out = RS_OK;
    return svc;

fail:
    if (err_out) *err_out = err;
    rs_service_destroy(svc);
    return NULL;
}

void rs_service_destroy(rs_service_t *svc) {
    if (!svc) return;
    rs_svc_ckpt_settle(svc, 1); /* a detached one, if delivered */
    if (svc->ckpt_active) rs_features_checkpoint_abort(svc->feat);
    if (svc->ing) { /* the consumer's close revokes: nothing to move then */
        rs_ingest_set_revoke_cb(svc->ing, NULL, NULL);
        rs_ingest_set_assign_cb(svc->ing, NULL, NULL);
    }
    rs_cpstage_destroy(svc->cp); /* before its feed's consumer */
    rs_ingest_destroy(svc->ing);
    rs_parts_destroy(svc->parts);
    rs_standby_destroy(svc->sb);
    rs_changelog_destroy(svc->clog);
    if (svc->feat_out) fclose(svc->feat_out);
    rs_pstate_destroy(svc->pstate);
    rs_model_shard_destroy(svc->msh);
    /* the producer first: it may read the records' bytes (arena sets of
     * the workers and enc_json/enc_kafka) until its last report */
    rs_sink_kafka_destroy(svc->ks);
    rs_workers_destroy(svc->wk);
    rs_sink_redis_destroy(svc->rd);
    rs_alerts_destroy(svc->al);
    rs_trainer_destroy(svc->tr);  /* before the logs it reads */
    rs_msync_destroy(svc->msync); /* after the trainer: its hooks */
    rs_state_destroy(svc->state);
    rs_model_destroy(svc->model);
    rs_features_destroy(svc->feat);
    free(svc->msgs);
    rs_free(svc->x);
    rs_free(svc->contrib);
    rs_free(svc->scores);
    free(svc->min);
    free(svc->mout);
    free(svc->flags);
    free(svc->ev_msg);
    free(svc->out);
    free(svc->pub);
    rs_free(svc->lrec);
    free(svc->ev_log);
    free(svc->touched);
    free(svc->lpend);
    free(svc->pwm);
    free(svc->pwm_sent);
    free(svc->lend_sent);
    free(svc->lrestore);
    free(svc->ckpt_logs);
    free(svc->ev_dd);
    free(svc->dd_key);
    free(svc->dup_msg);
    free(svc->dup_dd);
    rs_dedup_destroy(svc->dedup);
    for (int g = 0; g <= RS_WORKERS_GENS; g++) {
        rs_enc_arena_free(&svc->enc_json[g]);
        rs_enc_arena_free(&svc->enc_kafka[g]);
    }
    free(svc->json);
    free(svc->json_lens);
    free(svc->kbytes);
    free(svc->recs);
    free(svc->rec_lens);
    free(svc->klens);
    rs_free(svc->logbuf);
    free(svc->logs);
    free(svc->log_lens);
    free(svc->ring);
    free(svc->offs);
    free(svc->txn_dirty);
    free(svc->applied);
    free(svc->ckpt_buf);
    free(svc->reh_buf);
    if (svc->snap) {
        pthread_mutex_destroy(&svc->snap_lock);
        free(svc->snap);
    }
    free(svc);
}

void rs_service_set_progress(rs_service_t *svc, rs_service_progress_cb *cb,
                             void *opaque, int64_t interval_ms) {
    svc->progress_cb = cb;
    svc->progress_opaque = opaque;
    svc->progress_interval_us = interval_ms * 1000;
}

rs_err_t rs_service_rollback(rs_service_t *svc, const char *version,
                             int timeout_ms, char *errstr,
                             size_t errstr_size) {
    return rs_trainer_rollback(svc->tr, version, timeout_ms, errstr,
                               errstr_size);
}

void rs_service_reset_latency(rs_service_t *svc) {
    rs_hist_init(&svc->st.e2e_us);
    rs_hist_init(&svc->st.proc_us);
    rs_hist_init(&svc->st.fetch_us);
    rs_hist_init(&svc->st.deliver_us);
    rs_hist_init(&svc->st.batch_msgs);
}

const char *rs_service_example_id(const rs_service_t *svc) {
    return svc->example_id;
}

rs_err_t rs_service_lookup(rs_service_t *svc, const char *event_id,
                           char *json, size_t size, char *errstr,
                           size_t errstr_size) {
    return rs_sink_redis_get_score(svc->rd, event_id, json, size, errstr,
                                   errstr_size);
}

/* The newest version of the model store whose features and architecture
 * are those of t (restart: learning continues from it); else t. */
static rs_model_t *rs_svc_newest_stored(rs_model_t *t,
                                        const rs_model_conf_t *tconf,
                                        int dim, const char *const *names) {
    char e2[256];
    rs_model_store_t *ms =
        rs_model_store_open(tconf->store_dir, (int)tconf->keep_versions, e2,
                            sizeof(e2));
    if (!ms) return t;
    rs_model_store_entry_t *e = rs_calloc(16, sizeof(*e));
    int n = rs_model_store_list(ms, e, 16);
    rs_learnlog_meta_t want, got;
    rs_model_lrec_meta(t, &want);
    for (int i = 0; i < n; i++) {
        rs_model_t *m = NULL;
        if (rs_model_store_load(ms, e[i].version, tconf, &m, e2,
                                sizeof(e2)) != RS_OK)
            continue;
        rs_model_lrec_meta(m, &got);
        if (!memcmp(&want, &got, sizeof(want)) &&
            rs_model_check_names(m, dim, names, e2, sizeof(e2)) == RS_OK &&
            !strcmp(rs_model_kind(m), rs_model_kind(t))) {
            rs_info("service", "continuing from stored model version %s",
                    rs_model_version(m));
            rs_model_destroy(t);
            t = m;
            break;
        }
        rs_model_destroy(m);
    }
    free(e);
    rs_model_store_close(ms);
    return t;
}

/* ---------------------------------------------------------------- run */

/* Milliseconds left before the graceful stop must be done: -1 while not
 * stopping; from the first call that sees *stop, every wait of the service
 * thread shares service.stop_timeout. */
int rs_svc_stop_left_ms(rs_service_t *svc, volatile sig_atomic_t *stop) {
    if (!svc->stop_deadline_us) {
        if (!stop || !*stop) return -1;
        svc->stop_deadline_us =
            rs_clock_mono_us() + svc->conf->stop_timeout_ms * 1000;
    }
    int64_t left = svc->stop_deadline_us - rs_clock_mono_us();
    return left > 0 ? (int)((left + 999) / 1000) : 0;
}

rs_err_t rs_service_run(rs_service_t *svc, volatile sig_atomic_t *stop,
                        char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    svc->stop = stop;
    rs_ingest_set_revoke_cb(svc->ing, rs_svc_revoke_hook, svc);
    rs_ingest_set_assign_cb(svc->ing, rs_svc_assign_hook, svc);
    svc->start_us = svc->last_input_us = rs_clock_mono_us();
    svc->ckpt_due_us = svc->start_us + svc->conf->checkpoint_interval_ms * 1000;
    rs_info("service", "scoring %s -> %s + redis, model %s, %d features, %s",
            svc->app->ingest.topic_events, svc->app->ingest.topic_scores,
            rs_model_version(svc->model), svc->dim,
            svc->eos ? "exactly-once" : "at-least-once");
    svc->trace = svc->conf->trace_slow_ms > 0;
    while (!*stop) {
        RS_SVC_MARK(svc, RS_SVC_TR_POLL0);
        /* the batch's messages are the consumer's until the next poll */
        int n = rs_ingest_poll_ref(svc->ing, svc->msgs, svc->batch_max,
                                   (int)svc->app->ingest.poll_timeout_ms);
        int64_t now = rs_clock_mono_us();
        if (svc->trace) svc->trm[RS_SVC_TR_POLL1] = now;
        if (n < 0) {
            err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                          "consumer failed (fatal Kafka error)");
            break;
        }
        if (svc->clog_err) { /* state.changelog: true, no usable topic */
            err = rs_errf(errstr, errstr_size, svc->clog_err, "%s",
                          svc->clog_errstr);
            break;
        }
        if (n > 0) {
            rs_hist_record(&svc->st.batch_msgs, n);
            svc->last_input_us = now;
            err = rs_svc_batch(svc, n, stop, errstr, errstr_size);
            if (err != RS_OK) break;
            RS_SVC_MARK(svc, RS_SVC_TR_BEND);
        }
        if (svc->eos && svc->txn_open &&
            now - svc->txn_begin_us >=
                svc->conf->transaction_interval_ms * 1000) {
            err = rs_svc_txn_commit(svc, stop, errstr, errstr_size);
            if (err != RS_OK) break;
        }
        if (rs_sink_kafka_poll(svc->ks, 0) == RS_ERR_KAFKA) {
            err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                          "scores producer failed (fatal Kafka error)");
            break;
        }
        rs_svc_store_acked(svc);
        rs_parts_tick(svc->parts); /* partitions that left: saved, dropped */
        rs_svc_standby_tick(svc); /* standby copies read (standby.h) */
        if (rs_parts_labels_held(svc->parts))
            rs_parts_labels_expire(svc->parts, rs_svc_p_replaying);
        RS_SVC_MARK(svc, RS_SVC_TR_ACKS);
        rs_svc_swap_weights(svc);
        RS_SVC_MARK(svc, RS_SVC_TR_SWAP);
        rs_svc_ckpt_tick(svc, now);
        RS_SVC_MARK(svc, RS_SVC_TR_CKPT);
        rs_svc_periodic(svc, now);
        if (svc->trace) {
            svc->trm[RS_SVC_TR_END] = rs_clock_mono_us();
            rs_svc_trace(svc, n);
        }
        if (svc->conf->max_events > 0 &&
            svc->st.scored >= (uint64_t)svc->conf->max_events)
            break;
        if (svc->conf->exit_idle_ms > 0 && n == 0 &&
            now - svc->last_input_us > svc->conf->exit_idle_ms * 1000)
            break;
    }
    /* Graceful stop: deliver what is in flight (Kafka and Redis), then
     * store and commit the offsets, checkpoint, and let the trainer learn
     * what is queued and save the model.  Every wait ends by one deadline
     * (service.stop_timeout from the moment the stop was seen); what is
     * still undelivered then is named, and read again after a restart. */
    if (rs_svc_stop_left_ms(svc, stop) < 0) /* a limit, not a signal */
        svc->stop_deadline_us =
            rs_clock_mono_us() + svc->conf->stop_timeout_ms * 1000;
    int64_t stop_t0 = svc->stop_deadline_us - svc->conf->stop_timeout_ms * 1000;
    char why[600] = "";
    if (svc->eos) {
        char e2[512];
        if (err == RS_OK) {
            if (rs_svc_txn_commit(svc, stop, e2, sizeof(e2)) != RS_OK) {
                rs_error("service", "final transaction: %s", e2);
                snprintf(why, sizeof(why), "final transaction: %s", e2);
            }
        } else if (svc->txn_open) {
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            svc->txn_open = 0;
            svc->st.txn_aborts++;
        }
    }
    rs_err_t kf = rs_sink_kafka_flush(svc->ks,
                                      RS_MAX(rs_svc_stop_left_ms(svc, stop), 0));
    rs_err_t rw = rs_sink_redis_wait(svc->rd, svc->sealed_seq,
                                     RS_MAX(rs_svc_stop_left_ms(svc, stop), 0));
    rs_svc_store_acked(svc);
    if (svc->ring_head == svc->ring_tail) {
        rs_svc_ckpt_final(svc);
    } else {
        /* Say which side holds the batches back: Kafka acknowledgements or
         * the Redis writer (or, exactly-once, the aborted transaction). */
        size_t wl = strlen(why);
        if (kf != RS_OK) {
            rs_sink_kafka_stats_t kst;
            rs_sink_kafka_stats(svc->ks, &kst);
            wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
                                   "%skafka: %lld score message(s) not "
                                   "acknowledged by the brokers",
                                   wl ? "; " : "", (long long)kst.inflight);
        }
        if (rw != RS_OK && wl < sizeof(why)) {
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
                                   "%sredis: batches %llu..%llu not written "
                                   "(%llu bytes queued; redis %s)",
                                   wl ? "; " : "",
                                   (unsigned long long)rst.done_seq + 1,
                                   (unsigned long long)svc->sealed_seq,
                                   (unsigned long long)rst.buffer_bytes,
                                   rst.healthy ? "answers but is too slow"
                                               : "unreachable");
        }
        if (!why[0])
            snprintf(why, sizeof(why), "offsets not stored");
        rs_error("service", "stopping after %.1f s with %llu batch(es) "
                 "undelivered: %s; no final checkpoint (the last one stays "
                 "valid); their input is read again after the restart",
                 (double)(rs_clock_mono_us() - stop_t0) / 1e6,
                 (unsigned long long)(svc->ring_head - svc->ring_tail), why);
        if (err == RS_OK)
            err = rs_errf(errstr, errstr_size,
                          kf != RS_OK ? RS_ERR_KAFKA : RS_ERR_REDIS,
                          "stopped with %llu batch(es) undelivered: %s",
                          (unsigned long long)(svc->ring_head -
                                               svc->ring_tail), why);
    }
    char e3[256];
    if (!svc->eos && rs_ingest_commit_sync(svc->ing, e3, sizeof(e3)) != RS_OK)
        rs_warn("service", "final offset commit: %s", e3);
    rs_svc_periodic(svc, rs_clock_mono_us());
    char e2[256];
    if (rs_trainer_stop(svc->tr, 1, e2, sizeof(e2)) != RS_OK)
        rs_error("service", "saving model: %s", e2);
    rs_svc_swap_weights(svc);
    svc->snap_next_us = 0; /* the metrics snapshot of the final state */
    rs_svc_periodic(svc, rs_clock_mono_us());
    return err;
}
