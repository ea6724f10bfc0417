/* ingest.c -- the consumer: one group on the events + labels topics,
 * decode into caller arrays, dead-letter bad input, explicit offset store.
 *
 * Invariants
 * - An offset is committable only after rs_ingest_store() (at-least-once).
 *   For a reject that also means "its DLQ copy was acknowledged".
 * - A bad message never stops its partition: it is returned as
 *   RS_MSG_REJECT so its offset moves on with the others.
 * - The poll and store paths allocate nothing of their own; only the
 *   reject path (DLQ headers) does.
 * - A reject is tracked (topic, partition, offset) until the DLQ
 *   acknowledges its copy; storing that offset or a later one of the same
 *   partition first waits for the DLQ.
 * - Exactly-once mode: the consumer never commits (no auto commit, no
 *   offset store, no commit on revoke); offsets go in the sink's
 *   transactions.
 * - Replay bounds: for a partition started by rs_ingest_set_start below
 *   its committed offset C, messages with offset < C are flagged replay.
 *   A bound is dropped once a message at or past C is seen, so the check
 *   costs nothing once every replay is over (nreplay == 0).
 * - Resets: librdkafka runs with auto.offset.reset=error, so a position
 *   that is out of range (or missing) comes to rs_ingest_poll as a
 *   consumer error; the partition is then re-assigned at BEGINNING or END
 *   per topics.offset_reset, after the poll loop, once for all partitions
 *   reset in that poll.  With the eager protocol a re-assign replaces the
 *   whole assignment, so the other partitions are re-assigned at their
 *   current position (or, if nothing was read from them yet, at the offset
 *   they were assigned with: `asg`).
 *
 * Threads: everything runs on the owner thread: rebalance, error and
 * delivery callbacks are served from rs_ingest_poll / rs_ingest_store /
 * rs_ingest_destroy.  Counters are relaxed atomics so that
 * rs_ingest_stats() may read them from a metrics thread.
 */
#include <stdatomic.h>
#include <stdatomic.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/imerge.h"
#include "ingest/ingest_int.h"

/* ----------------------------------------------------------- configuration */

#define RS_STR_FIELD(key, member, def, desc)                                  \
    {key, RS_CONF_STRING, def, offsetof(rs_ingest_conf_t, member),            \
     sizeof(((rs_ingest_conf_t *)0)->member), desc, NULL, 0, 0}

static const rs_conf_field_t rs_ingest_fields[] = {
    RS_STR_FIELD("brokers", brokers, "",
                 "Kafka bootstrap servers host:port,...; empty = start the "
                 "embedded broker"),
    RS_STR_FIELD("group_id", group_id, "riskstream",
                 "consumer group of the events and labels topics"),
    RS_STR_FIELD("events", topic_events, "events", "events topic (input)"),
    RS_STR_FIELD("labels", topic_labels, "labels", "labels topic (input)"),
    RS_STR_FIELD("scores", topic_scores, "scores", "scores topic (output)"),
    RS_STR_FIELD("alerts", topic_alerts, "alerts",
                 "alerts topic: scores decided review/decline/alert"),
    RS_STR_FIELD("dlq", topic_dlq, "events.dlq",
                 "dead-letter topic for rejected input"),
    {"events_format", RS_CONF_ENUM, "json",
     offsetof(rs_ingest_conf_t, events_format), 0,
     "encoding of the events topic", "json|protobuf", 0, 0},
    {"labels_format", RS_CONF_ENUM, "json",
     offsetof(rs_ingest_conf_t, labels_format), 0,
     "encoding of the labels topic", "json|protobuf", 0, 0},
    {"partitions", RS_CONF_INT, "4", offsetof(rs_ingest_conf_t, partitions),
     0, "partitions per topic of the embedded broker", NULL, 1, 1024},
    {"batch_max", RS_CONF_INT, "512", offsetof(rs_ingest_conf_t, batch_max),
     0, "most messages taken per poll (micro-batch size); a poll takes what "
     "is ready, so the batch size follows the backlog: a few messages when "
     "the consumer is caught up (low latency), batch_max under load "
     "(full GEMMs, all workers busy); riskstream_batch_messages shows it",
     NULL, 1, 65536},
    {"poll_timeout", RS_CONF_DURATION, "100ms",
     offsetof(rs_ingest_conf_t, poll_timeout_ms), 0,
     "longest wait for the first message of a batch", NULL, 0, 60000},
    {"offset_reset", RS_CONF_ENUM, "earliest",
     offsetof(rs_ingest_conf_t, offset_reset), 0,
     "where to start without a committed offset or when it is out of range",
     "earliest|latest", 0, 0},
    {"future_skew", RS_CONF_DURATION, "1h",
     offsetof(rs_ingest_conf_t, future_skew_ms), 0,
     "an event dated more than this ahead of both the wall clock and the "
     "newest event time of its partition goes to the dead-letter topic "
     "(never scored, moves no state); streams dated in the past (replays) "
     "are never affected; 0 = off", NULL, 0, 3153600000000.0},
    {"task_merge", RS_CONF_BOOL, "true", offsetof(rs_ingest_conf_t, task_merge),
     0, "hand the messages of each task (events partition N with labels "
     "partition N) to scoring in time order (event_time_ms, label_time_ms; "
     "an event before a label at equal time), as Kafka Streams orders a "
     "task's records: label-aware entity features (ent_fraud_count_30d) "
     "then do not depend on how the fetches of the two topics interleave; "
     "a message waits while the other topic of its task has data not yet "
     "fetched; false = fetch order", NULL, 0, 0},
    {"max_task_idle", RS_CONF_DURATION, "0ms",
     offsetof(rs_ingest_conf_t, max_task_idle_ms), 0,
     "task_merge: when the other topic of a task is at its end (nothing "
     "more fetched), a message waits this long after it arrived before it "
     "goes without it (Kafka Streams' max.task.idle.ms, per message): a "
     "label produced within this of a newer event is merged in order on a "
     "live stream (the others are counted in "
     "riskstream_task_merge_reordered_total and the log says which wait "
     "would have merged them in order); 0 = no wait once the other topic is at its end (exact on "
     "a backlog, a replay, a restore; no added latency); every message "
     "waits up to this while the other topic is quiet (README, Scale-out)",
     NULL, 0, 600000},
    {"read_ahead", RS_CONF_BOOL, "true", offsetof(rs_ingest_conf_t, read_ahead),
     0, "read the consumer (batch consume) and decode the payloads of the "
     "next batch on an ingest thread while this one is scored, into a "
     "double buffer: the scoring thread no longer polls Kafka or parses "
     "JSON/protobuf; order, rebalances, replays, dead letters and offsets "
     "are those without it; false = read and decode on the scoring thread "
     "(decode on its workers)", NULL, 0, 0},
};

const rs_conf_field_t *rs_ingest_conf_fields(int *n) {
    *n = (int)RS_ARRAY_LEN(rs_ingest_fields);
    return rs_ingest_fields;
}

void rs_ingest_conf_section(rs_conf_section_t *sec, rs_ingest_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = RS_INGEST_CONF_SECTION;
    sec->desc = "Kafka topics, formats and the consumer group";
    sec->fields = rs_ingest_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_ingest_fields);
    sec->base = conf;
}

void rs_ingest_conf_init(rs_ingest_conf_t *conf) {
    /* Defaults come from the table only: register in a throwaway registry,
     * which fills them in. */
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_ingest_conf_section(&sec, conf);
    rs_conf_t *reg = rs_conf_new();
    if (rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("ingest", "topics defaults: %s", errstr); /* table bug */
    rs_conf_destroy(reg);
}

/* ----------------------------------------------------------------- create */

rs_ingest_t *rs_ingest_new(const rs_ingest_conf_t *conf,
                           const rs_kv_t *kafka_props, const char *bootstrap,
                           char *errstr, size_t errstr_size) {
    /* The last row only for the embedded broker: the mock holds every
     * Fetch for fetch.wait.max.ms even when data arrives (a real broker
     * answers as soon as fetch.min.bytes are there), which would add up to
     * 500 ms (the default) to every event's latency. */
    static const char *const consumer_defaults[][2] = {
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"enable.partition.eof", "false"},
        /* Scale-out (README "Scale-out"): range keeps events/N and
         * labels/N on one instance (co-partitioning: a label meets its
         * event's state); a failed instance's partitions move after 10 s
         * instead of librdkafka's 45 s, a graceful leave at once. */
        {"partition.assignment.strategy", "range"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"fetch.wait.max.ms", "5"},
    };
    int embedded = !conf->brokers[0];
    static const char *const dlq_defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
    };
    rs_ingest_t *ing = NULL;
    rd_kafka_conf_t *kconf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_resp_err_t kerr;
    char buf[512];

    if (!bootstrap || !*bootstrap) bootstrap = conf->brokers;
    if (!*bootstrap && !(kafka_props &&
                         rs_kv_get(kafka_props, "bootstrap.servers"))) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "ingest: no Kafka brokers (topics.brokers or "
                "kafka.bootstrap.servers)");
        return NULL;
    }
    if (!conf->group_id[0] || !conf->topic_events[0] ||
        !conf->topic_labels[0] || !conf->topic_dlq[0]) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "ingest: group_id and the events, labels and dlq topic names "
                "must not be empty");
        return NULL;
    }
    ing = rs_calloc(1, sizeof(*ing));
    ing->conf = *conf;
    pthread_mutex_init(&ing->tap_mu, NULL);
    ing->pend = rs_calloc(RS_DLQ_PEND_MAX, sizeof(*ing->pend));
    ing->wm = rs_calloc(RS_INGEST_WM_PARTS, sizeof(*ing->wm));
    for (int i = 0; i < RS_INGEST_WM_PARTS; i++) ing->wm[i] = INT64_MIN;

    /* Consumer: our defaults < `kafka:` section < settings that the
     * delivery guarantee depends on.  auto.offset.reset=error: resets come
     * to us as consumer errors and are applied (and logged) by us. */
    if (rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, kafka_props, bootstrap,
                                consumer_defaults,
                                (int)RS_ARRAY_LEN(consumer_defaults) -
                                    (embedded ? 0 : 1), &kconf,
                                errstr, errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "group.id", conf->group_id, errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "enable.auto.offset.store", "false", errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "auto.offset.reset", "error", errstr,
                           errstr_size) != RS_OK)
        goto fail;
    /* The task merge needs to know when a partition is at its end. */
    if (conf->task_merge &&
        rs_kafka_conf_set1(kconf, "enable.partition.eof", "true", errstr,
                           errstr_size) != RS_OK)
        goto fail;
    if (conf->exactly_once &&
        (rs_kafka_conf_set1(kconf, "isolation.level", "read_committed",
                            errstr, errstr_size) != RS_OK ||
         rs_kafka_conf_set1(kconf, "enable.auto.commit", "false", errstr,
                            errstr_size) != RS_OK))
        goto fail;
    rd_kafka_conf_set_opaque(kconf, ing);
    rd_kafka_conf_set_rebalance_cb(kconf, rs_ingest_rebalance_cb);
    rd_kafka_conf_set_error_cb(kconf, rs_ingest_error_cb);
    ing->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, buf, sizeof(buf));
    if (!ing->rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: consumer: %s", buf);
        goto fail;
    }
    kconf = NULL; /* owned by rk */
    /* Serve errors and logs from rd_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(ing->rk);
    ing->rkt[RS_MSG_TOPIC_EVENTS] =
        rd_kafka_topic_new(ing->rk, conf->topic_events, NULL);
    ing->rkt[RS_MSG_TOPIC_LABELS] =
        rd_kafka_topic_new(ing->rk, conf->topic_labels, NULL);
    if (!ing->rkt[0] || !ing->rkt[1]) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: topic: %s",
                rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }

    /* Dead-letter producer. */
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, kafka_props, bootstrap,
                                dlq_defaults, (int)RS_ARRAY_LEN(dlq_defaults),
                                &kconf, errstr, errstr_size) != RS_OK)
        goto fail;
    {
        size_t tlen = 0; /* value size with its NUL: > 1 if set */
        if (rd_kafka_conf_get(kconf, "transactional.id", NULL, &tlen) ==
                RD_KAFKA_CONF_OK && tlen > 1) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "ingest: kafka.transactional.id must not be set (it "
                    "would make every producer transactional); exactly-once "
                    "mode gives the Kafka sink its own");
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(kconf, ing);
    rd_kafka_conf_set_dr_msg_cb(kconf, rs_ingest_dlq_dr_cb);
    ing->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, buf, sizeof(buf));
    if (!ing->dlq) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: DLQ producer: %s",
                buf);
        goto fail;
    }
    kconf = NULL;

    topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, conf->topic_events,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, conf->topic_labels,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(ing->rk, topics);
    if (kerr) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: subscribe: %s",
                rd_kafka_err2str(kerr));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    if (conf->task_merge) {
        int64_t hold = 4 * conf->batch_max;
        if (hold < RS_MERGE_HOLD_MIN) hold = RS_MERGE_HOLD_MIN;
        ing->im = rs_imerge_new(conf->max_task_idle_ms, (uint32_t)hold,
                                rs_ingest_merge_end, ing);
        ing->seen_ms = rs_clock_mono_us() / 1000;
    }
    rs_info("ingest", "consumer group '%s' subscribed to '%s' (%s) and '%s' "
            "(%s); dead letters to '%s'%s", conf->group_id, conf->topic_events,
            conf->events_format == RS_FORMAT_PROTOBUF ? "protobuf" : "json",
            conf->topic_labels,
            conf->labels_format == RS_FORMAT_PROTOBUF ? "protobuf" : "json",
            conf->topic_dlq,
            conf->exactly_once ? "; exactly-once (read_committed, offsets "
                                 "committed in transactions)" : "");
    return ing;
fail:
    if (topics) rd_kafka_topic_partition_list_destroy(topics);
    if (kconf) rd_kafka_conf_destroy(kconf);
    rs_ingest_destroy(ing);
    return NULL;
}

/* ------------------------------------------------------------ offsets */

/* 1 if storing `offset` would pass a reject whose DLQ copy is pending. */
static int rs_ingest_dlq_blocks(const rs_ingest_t *ing, int topic,
                                int32_t partition, int64_t offset) {
    if (ing->pend_untracked > 0) return 1;
    for (int i = 0; i < ing->pend_hi; i++) {
        const rs_dlq_pend_t *p = &ing->pend[i];
        if (p->used && p->topic == topic && p->partition == partition &&
            p->offset <= offset)
            return 1;
    }
    return 0;
}

static int rs_ingest_dlq_unblocked(const rs_ingest_t *ing, const void *arg) {
    const rs_dlq_pend_t *at = arg;
    return !rs_ingest_dlq_blocks(ing, at->topic, at->partition, at->offset);
}

rs_err_t rs_ingest_store_offset(rs_ingest_t *ing, int topic,
                                int32_t partition, int64_t offset) {
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return RS_ERR_INVALID;
    if (ing->dlq_pending > 0 &&
        rs_ingest_dlq_blocks(ing, topic, partition, offset)) {
        rs_dlq_pend_t at = {1, topic, partition, offset};
        if (!rs_ingest_dlq_wait(ing, RS_DLQ_STORE_WAIT_MS,
                                rs_ingest_dlq_unblocked, &at)) {
            rs_warn("ingest", "%lld dead-letter message(s) not acknowledged "
                    "yet: offset not stored", (long long)ing->dlq_pending);
            return RS_ERR_AGAIN;
        }
    }
    if (ing->conf.exactly_once) return RS_OK; /* offsets go in the txn */
    rd_kafka_resp_err_t kerr =
        rd_kafka_offset_store(ing->rkt[topic], partition, offset);
    if (kerr == RD_KAFKA_RESP_ERR__STATE) {
        rs_debug("ingest", "offset of %s/%d not stored: partition no longer "
                 "assigned", rd_kafka_topic_name(ing->rkt[topic]),
                 (int)partition);
        return RS_OK;
    }
    if (kerr) {
        rs_error("ingest", "offset store %s/%d: %s",
                 rd_kafka_topic_name(ing->rkt[topic]), (int)partition,
                 rd_kafka_err2str(kerr));
        return RS_ERR_KAFKA;
    }
    return RS_OK;
}

int rs_ingest_lag(rs_ingest_t *ing, rs_ingest_lag_t *out, int max) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(ing->rk, &parts) || !parts) return 0;
    rd_kafka_position(ing->rk, parts);
    int n = 0;
    for (int i = 0; i < parts->cnt && n < max; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(ing->rk, tp->topic, tp->partition,
                                       &lo, &hi);
        out[n].topic = !strcmp(tp->topic, ing->conf.topic_labels)
                           ? RS_MSG_TOPIC_LABELS
                           : RS_MSG_TOPIC_EVENTS;
        out[n].partition = tp->partition;
        /* No position yet (nothing read since the last (re-)assign): the
         * offset it was assigned at, which is where it stands -- not the
         * whole partition, which is what it read as before. */
        int64_t pos = tp->offset;
        if (pos < 0 && ing->asg) {
            const rd_kafka_topic_partition_t *a =
                rd_kafka_topic_partition_list_find(ing->asg, tp->topic,
                                                   tp->partition);
            if (a && a->offset >= 0) pos = a->offset;
            else if (a && a->offset == RD_KAFKA_OFFSET_BEGINNING) pos = lo;
            else if (a && a->offset == RD_KAFKA_OFFSET_END) pos = hi;
        }
        out[n].lag = hi >= 0 && pos >= 0 ? RS_MAX(hi - pos, 0) : -1;
        if (out[n].lag >= 0 && ing->im) /* read but held by the merge */
            out[n].lag += rs_imerge_held(ing->im, out[n].topic, tp->partition);
        if (out[n].lag >= 0 && ing->ra) /* read ahead, not handed over */
            out[n].lag += rs_ingest_ra_held(ing, out[n].topic, tp->partition,
                                            NULL, NULL);
        n++;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

rs_err_t rs_ingest_set_start(rs_ingest_t *ing, const rs_ingest_pos_t *pos,
                             int n) {
    if (n < 0 || (n > 0 && !pos)) return RS_ERR_INVALID;
    free(ing->start);
    ing->start = NULL;
    ing->nstart = 0;
    if (n == 0) return RS_OK;
    ing->start = rs_calloc((size_t)n, sizeof(*pos));
    memcpy(ing->start, pos, (size_t)n * sizeof(*pos));
    ing->nstart = n;
    return RS_OK;
}

void rs_ingest_set_assign_cb(rs_ingest_t *ing, rs_ingest_assign_cb_t *cb,
                             void *opaque) {
    ing->assign_cb = cb;
    ing->assign_opaque = opaque;
}

int rs_ingest_replaying(rs_ingest_t *ing, int64_t *left) {
    int n = 0;
    int64_t sum = 0;
    for (int k = 0; k < ing->replay_cap && ing->nreplay; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic < 0) continue;
        n++;
        rd_kafka_topic_partition_list_t *pl =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(
            pl, rd_kafka_topic_name(ing->rkt[r->topic]), r->partition);
        rd_kafka_position(ing->rk, pl);
        int64_t pos = pl->elems[0].offset;
        if (pos < 0) { /* nothing read yet: from the log start */
            int64_t lo = 0, hi = 0;
            rd_kafka_get_watermark_offsets(
                ing->rk, rd_kafka_topic_name(ing->rkt[r->topic]), r->partition,
                &lo, &hi);
            pos = lo > 0 ? lo : 0;
        }
        rd_kafka_topic_partition_list_destroy(pl);
        /* read ahead, not flagged yet: from there (the position first,
         * then the read-ahead: see rs_ingest_ra_held) */
        int64_t first = -1;
        int inflight = 0;
        if (ing->ra && rs_ingest_ra_held(ing, r->topic, r->partition, &first,
                                         &inflight) &&
            first < pos)
            pos = first;
        if (inflight && pos >= r->offset) {
            /* A batch call in flight may hold messages below the bound
             * that the position already passed: decide at the next call
             * (ending the replay now would publish them as new). */
            sum += 1;
            continue;
        }
        if (pos >= r->offset) { /* read up to its bound: over */
            rs_info("ingest", "%s/%d: replay over at offset %lld",
                    rd_kafka_topic_name(ing->rkt[r->topic]),
                    (int)r->partition, (long long)pos);
            ing->replay[k].topic = -1;
            ing->nreplay--;
            n--;
            continue;
        }
        sum += r->offset - pos;
    }
    if (left) *left = sum;
    return n;
}

int rs_ingest_replaying_part(const rs_ingest_t *ing, int topic,
                             int32_t partition) {
    for (int k = 0; k < ing->replay_cap && ing->nreplay; k++)
        if (ing->replay[k].topic == topic &&
            ing->replay[k].partition == partition)
            return 1;
    return 0;
}

int rs_ingest_behind(rs_ingest_t *ing, int topic, int32_t partition) {
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return 0;
    if (ing->im && rs_imerge_held(ing->im, topic, partition))
        return 1; /* read, held by the task merge, not returned yet */
    const char *tn = rd_kafka_topic_name(ing->rkt[topic]);
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, tn, partition);
    rd_kafka_position(ing->rk, pl);
    int64_t pos = pl->elems[0].offset, lo = -1, hi = -1;
    rd_kafka_topic_partition_list_destroy(pl);
    /* after the position (see rs_ingest_ra_held): a message the position
     * passed is held, handed over, or in a batch call in flight */
    int inflight = 0;
    if (ing->ra && (rs_ingest_ra_held(ing, topic, partition, NULL, &inflight) ||
                    inflight))
        return 1; /* read ahead (or being read ahead), not returned yet */
    rd_kafka_get_watermark_offsets(ing->rk, tn, partition, &lo, &hi);
    if (hi < 0) return 1; /* not known yet: assume more is coming */
    if (pos < 0) { /* nothing read since the assignment */
        const rd_kafka_topic_partition_t *a =
            ing->asg ? rd_kafka_topic_partition_list_find(ing->asg, tn,
                                                          partition)
                     : NULL;
        pos = a && a->offset >= 0 ? a->offset : lo;
    }
    return pos < hi;
}

int rs_ingest_rebalancing(const rs_ingest_t *ing) {
    return ing->awaiting_assign;
}

int rs_ingest_owns(rs_ingest_t *ing, int topic, int32_t partition) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return 0;
    if (rd_kafka_assignment(ing->rk, &parts) || !parts) return 0;
    int own = rd_kafka_topic_partition_list_find(
                  parts, rd_kafka_topic_name(ing->rkt[topic]), partition) !=
              NULL;
    rd_kafka_topic_partition_list_destroy(parts);
    return own;
}

rs_err_t rs_ingest_store(rs_ingest_t *ing, const rs_msg_t *msgs, int n) {
    for (int i = 0; i < n; i++) {
        rs_err_t err = rs_ingest_store_offset(ing, msgs[i].topic,
                                              msgs[i].partition,
                                              msgs[i].offset);
        if (err != RS_OK) return err;
    }
    return RS_OK;
}

rs_err_t rs_ingest_store_ref(rs_ingest_t *ing, const rs_msg_t *const *msgs,
                             int n) {
    for (int i = 0; i < n; i++) {
        rs_err_t err = rs_ingest_store_offset(ing, msgs[i]->topic,
                                              msgs[i]->partition,
                                              msgs[i]->offset);
        if (err != RS_OK) return err;
    }
    return RS_OK;
}

rs_err_t rs_ingest_commit_sync(rs_ingest_t *ing, char *errstr,
                               size_t errstr_size) {
    if (ing->conf.exactly_once) return RS_OK; /* nothing is ever stored */
    rd_kafka_resp_err_t kerr = rd_kafka_commit(ing->rk, NULL, 0);
    if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "commit: %s",
                       rd_kafka_err2str(kerr));
    return RS_OK;
}

static rs_err_t rs_ingest_pause_resume(rs_ingest_t *ing, int pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rs_ingest_ctl_begin(ing); /* the read-ahead thread out of its call */
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(ing->rk, &parts);
    if (!kerr)
        kerr = pause ? rd_kafka_pause_partitions(ing->rk, parts)
                     : rd_kafka_resume_partitions(ing->rk, parts);
    rs_ingest_ctl_end(ing);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (kerr) {
        rs_error("ingest", "%s: %s", pause ? "pause" : "resume",
                 rd_kafka_err2str(kerr));
        return RS_ERR_KAFKA;
    }
    ing->paused = pause;
    if (!pause && ing->im) /* every partition fetches again */
        rs_imerge_resume(ing->im, 1, NULL, NULL);
    return RS_OK;
}

rs_err_t rs_ingest_pause(rs_ingest_t *ing) {
    return rs_ingest_pause_resume(ing, 1);
}

rs_err_t rs_ingest_resume(rs_ingest_t *ing) {
    return rs_ingest_pause_resume(ing, 0);
}

void rs_ingest_stats(const rs_ingest_t *ing, rs_ingest_stats_t *st) {
    rs_ingest_counters_t *c = (rs_ingest_counters_t *)&ing->c;
    st->consumed = RS_LOAD(c->consumed);
    st->events = RS_LOAD(c->events);
    st->labels = RS_LOAD(c->labels);
    st->rejected = RS_LOAD(c->rejected);
    st->errors = RS_LOAD(c->errors);
    st->offset_resets = RS_LOAD(c->offset_resets);
    st->dlq_delivered = RS_LOAD(c->dlq_delivered);
    st->dlq_failed = RS_LOAD(c->dlq_failed);
    st->future = RS_LOAD(c->future);
    st->dlq_lost = RS_LOAD(c->dlq_lost);
    st->assigned = RS_LOAD(c->assigned);
    st->rebalances = RS_LOAD(c->rebalances);
    st->merge_held = RS_LOAD(c->merge_held);
    st->merge_reordered = RS_LOAD(c->merge_reordered);
    st->merge_held_max = RS_LOAD(c->merge_held_max);
    st->merge_merged = RS_LOAD(c->merge_merged);
    st->merge_paused = RS_LOAD(c->merge_paused);
    st->merge_end_checks = RS_LOAD(c->merge_end_checks);
    st->merge_reorder_behind_ms = RS_LOAD(c->merge_reorder_behind_ms);
    st->merge_reorder_late_ms = RS_LOAD(c->merge_reorder_late_ms);
}

rd_kafka_t *rs_ingest_handle(rs_ingest_t *ing) { return ing->rk; }

int rs_ingest_on_mock(rs_ingest_t *ing, int timeout_ms) {
    char *id = rd_kafka_clusterid(ing->rk, timeout_ms);
    if (!id) return -1;
    int mock = !strncmp(id, "mockCluster", 11); /* rdkafka_mock.c's id */
    rd_kafka_mem_free(ing->rk, id);
    return mock;
}

rd_kafka_consumer_group_metadata_t *rs_ingest_group_metadata(rs_ingest_t *ing) {
    return rd_kafka_consumer_group_metadata(ing->rk);
}

void rs_ingest_set_revoke_cb(rs_ingest_t *ing, rs_ingest_revoke_cb_t *cb,
                             void *opaque) {
    ing->revoke_cb = cb;
    ing->revoke_opaque = opaque;
}

/* Number of partitions assigned (librdkafka's view); -1 on error. */
static int rs_ingest_assigned_cnt(rd_kafka_t *rk) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(rk, &parts);
    int n = kerr || !parts ? -1 : parts->cnt;
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

/* Give the partitions back before rd_kafka_consumer_close (issue 13):
 * pause them (nothing more is read, positions stay where the owner left
 * them), unsubscribe, and serve the rebalance callbacks that follow here,
 * while the group handle is not terminating, until nothing is assigned
 * and no rebalance came for RS_LEAVE_QUIET_MS, at most RS_LEAVE_WAIT_MS.
 * The revoke is served as in any rebalance: the owner's revoke callback
 * (exactly-once: the transaction is committed) and the commit of the
 * stored offsets (at-least-once) run here instead of inside the close.
 * Why: librdkafka 2.0.2 can block forever in rd_kafka_assign() called
 * from a rebalance callback that rd_kafka_consumer_close serves (seen
 * after an "Unknown member" commit failure: the error rebalance's
 * rd_kafka_assign(NULL) never returned; upstream librdkafka #4884,
 * #4527).  With nothing assigned and no subscription left, the close has
 * no rebalance to serve.  Past the bound it logs and closes anyway. */
static void rs_ingest_leave(rs_ingest_t *ing) {
    rd_kafka_t *rk = ing->rk;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!rd_kafka_assignment(rk, &parts) && parts && parts->cnt)
        rd_kafka_pause_partitions(rk, parts);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    ing->leaving = 1;
    rd_kafka_resp_err_t kerr = rd_kafka_unsubscribe(rk);
    if (kerr) {
        rs_warn("ingest", "unsubscribe: %s", rd_kafka_err2str(kerr));
        return;
    }
    int64_t t0 = rs_clock_mono_us();
    int64_t deadline = t0 + RS_LEAVE_WAIT_MS * 1000LL;
    int n = -1, dropped = 0;
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 50);
        if (rkm) {
            if (!rkm->err) dropped++;
            rd_kafka_message_destroy(rkm);
        }
        int64_t now = rs_clock_mono_us();
        n = rs_ingest_assigned_cnt(rk);
        if (n == 0 && now - RS_MAX(ing->rebalance_us, t0) >=
                          RS_LEAVE_QUIET_MS * 1000LL)
            break;
        if (now > deadline) {
            rs_error("ingest", "%d partition(s) still assigned %d ms after "
                     "unsubscribe: closing anyway", n, RS_LEAVE_WAIT_MS);
            break;
        }
    }
    ing->ngone = 0; /* no rs_ingest_poll after this */
    if (dropped)
        rs_warn("ingest", "%d message(s) read while leaving dropped (not "
                "stored: the next owner reads them)", dropped);
}

void rs_ingest_destroy(rs_ingest_t *ing) {
    if (!ing) return;
    if (ing->dlq) {
        rs_ingest_dlq_wait(ing, RS_DLQ_CLOSE_WAIT_MS, rs_ingest_dlq_idle,
                           NULL);
        if (ing->dlq_pending > 0)
            rs_error("ingest", "%lld dead-letter message(s) undelivered at "
                     "close", (long long)ing->dlq_pending);
    }
    if (ing->im) {
        rs_imerge_stats_t ms;
        rs_imerge_stats(ing->im, &ms);
        rs_info("ingest", "task merge: %llu message(s) handed over in time "
                "order (%llu reordered), at most %llu waiting at once, "
                "%llu fetch pause(s), %llu end(s) seen by the high "
                "watermark, %llu left waiting (read again by the next "
                "owner)", (unsigned long long)ms.merged,
                (unsigned long long)ms.reordered,
                (unsigned long long)ms.held_max,
                (unsigned long long)ms.paused,
                (unsigned long long)ms.end_checks,
                (unsigned long long)ms.held);
        rs_ingest_merge_reorder_log(ing, &ms, 1);
    }
    if (ing->rk) {
        /* Revoke (commits stored offsets, or the owner its transaction)
         * and leave the group, then close with nothing left to revoke. */
        /* The read-ahead first: from here on the consumer is polled on
         * this thread again (a rebalance parked in it is served here). */
        rs_ingest_ra_stop(ing);
        rs_ingest_leave(ing);
        rd_kafka_resp_err_t kerr = rd_kafka_consumer_close(ing->rk);
        if (kerr)
            rs_warn("ingest", "consumer close: %s", rd_kafka_err2str(kerr));
        for (int i = 0; i < 2; i++)
            if (ing->rkt[i]) rd_kafka_topic_destroy(ing->rkt[i]);
        rd_kafka_destroy(ing->rk);
    }
    if (ing->dlq) rd_kafka_destroy(ing->dlq);
    while (ing->retry_head) {
        rs_dlq_retry_t *re = ing->retry_head;
        ing->retry_head = re->next;
        if (re->hdrs) rd_kafka_headers_destroy(re->hdrs);
        free(re);
    }
    rs_free(ing->pend);
    free(ing->wm);
    free(ing->rkms);
    free(ing->derr);
    free(ing->pm);
    free(ing->own);
    rs_imerge_destroy(ing->im);
    free(ing->ra_store); /* after the merge: they exchange slots */
    free(ing->start);
    free(ing->replay);
    if (ing->ahead) rd_kafka_topic_partition_list_destroy(ing->ahead);
    free(ing->gone);
    free(ing->resets);
    if (ing->asg) rd_kafka_topic_partition_list_destroy(ing->asg);
    pthread_mutex_destroy(&ing->tap_mu);
    rs_free(ing);
}
