/* cpstage.c -- the counterparty stage (cpstage.h): its configuration, its
 * thread (a non-group consumer of every partition of the events and
 * labels topics feeding the merge core, cpstage_merge.c) and the
 * scoring thread's side (rs_cpstage_fill).
 *
 * Threads and locking: the stage thread owns the consumer and the core's
 * raw side; one mutex `mu` guards every call into the core and the
 * counters, so the scoring thread's lookups (rs_cpm_find) and the
 * metrics see a consistent state.  The stage thread merges in chunks of
 * RS_CS_CHUNK messages and broadcasts `cv` after each; a lookup whose
 * result is missing merges a chunk itself first (rs_cs_step_waiting) and
 * sleeps on `cv` only when the merge is blocked (its input not pushed
 * yet), so it never waits for the stage thread to be scheduled.
 */
#define _GNU_SOURCE
#include "scoring/cpstage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest_int.h"
#include "scoring/cpstage_int.h"
#include "scoring/http.h"

#define RS_CS_CHUNK 128       /* messages merged per lock hold           */
#define RS_CS_POLL_MAX 4096   /* messages taken from the consumer per turn */
#define RS_CS_MAX_PARTS 4096  /* partitions per topic                    */
#define RS_CS_TRIM_US 1000000 /* committed-offset query period           */
#define RS_CS_REORDER_LOG_US 60000000 /* reorder summary period (info)    */

#define RS_CS_LATE_MS 1000    /* feed_late: a paused partition the feed has
                               * not moved on for this long, with data    */
#define RS_CS_LATE_CHECK_MS 100 /* ... looked at this often                */

_Atomic int rs_cpstage_test_nomerge; /* tests only (cpstage_int.h)      */
_Atomic int rs_cpstage_test_noread;
_Atomic int64_t rs_cpstage_test_late_ms;

/* ------------------------------------------------------------- config */

static const rs_conf_field_t rs_cpstage_fields[] = {
    {"enabled", RS_CONF_BOOL, "true", offsetof(rs_cpstage_conf_t, enabled), 0,
     "features of every non-entity key (counterparty, categorical fields) "
     "from a global store that reads every partition of the events and "
     "labels topics in one canonical order: exact, and the same bit for "
     "bit with one instance or several in the group; false = each instance "
     "from its own partitions only (counts fall to ~1/N with N instances)",
     NULL, 0, 0},
    {"wait", RS_CONF_DURATION, "30s", offsetof(rs_cpstage_conf_t, wait_ms), 0,
     "longest wait of an event for its counterparty features (the store "
     "reading the other partitions up to its time) once the store has read "
     "the topics at start (before, events wait as long as that takes: "
     "/readyz says so); past it the event is scored with them at 0 and "
     "counted (riskstream_cpstage_misses_total)",
     NULL, 1, 3600000},
    {"idle_wait", RS_CONF_DURATION, "0ms",
     offsetof(rs_cpstage_conf_t, idle_wait_ms), 0,
     "a partition at its end holds each message to merge back until this "
     "long after the message arrived (or after it reached its end, if "
     "later) before the merge goes on without it (Kafka Streams' "
     "max.task.idle.ms, per message): a message that reaches the stage "
     "within this of a newer one on another partition is merged in order; "
     "0 = no wait, a live stream has some merged out of order "
     "(riskstream_cpstage_reordered_total; the log says which wait would "
     "have merged them in order); exact on a live stream above the "
     "producers' skew between partitions (their linger.ms: a batch per "
     "partition, plus the fetch wait); every event waits up to this while a "
     "partition is quiet (README, Scale-out)",
     NULL, 0, 600000},
    {"max_pending", RS_CONF_INT, "1048576",
     offsetof(rs_cpstage_conf_t, max_pending), 0,
     "results kept for events the group has not committed yet (about "
     "16 + 4 x features bytes each); beyond, the store waits for the commits "
     "(unless the scoring thread waits for a result)", NULL, 1024,
     1073741824},
    {"buffer", RS_CONF_INT, "8192", offsetof(rs_cpstage_conf_t, buffer), 0,
     "messages read ahead per input partition before the store pauses its "
     "fetching there (the merge waits for the slowest partition)", NULL, 64,
     16777216},
    {"feed", RS_CONF_BOOL, "true", offsetof(rs_cpstage_conf_t, feed), 0,
     "the scoring consumer's read-ahead (topics.read_ahead) hands the store "
     "every message it reads (the partitions this instance owns), so an "
     "event is in the store's merge before the scoring thread takes it, "
     "instead of waiting until the stage's own consumer has read it too; "
     "each message is merged once, whichever read comes first, and the "
     "stage's consumer pauses the partitions the feed supplies (one read "
     "of them) until the feed stops (a rebalance or seek of the scoring "
     "consumer, a lookup waiting with the read-ahead full, or the feed "
     "still for 1 s with data to read); false = the stage's consumer alone",
     NULL, 0, 0},
    {"fetch_wait", RS_CONF_DURATION, "auto",
     offsetof(rs_cpstage_conf_t, fetch_wait_ms), 0,
     "fetch.wait.max.ms of the stage's consumer (over kafka.fetch.wait.max.ms "
     "for it): every event waits until the stage has read it too, so a fetch "
     "the broker holds is latency for the event's whole batch; auto = 1ms "
     "against librdkafka's mock cluster (embedded or `riskstream broker`, "
     "which holds an empty fetch that long even when data arrives meanwhile: "
     "at 2000 ev/s the stage's wait was ~5 ms of each batch's), otherwise the "
     "consumer's own setting (a real broker answers a held fetch as soon as "
     "data arrives)", "auto", 0, 10000},
};

const rs_conf_field_t *rs_cpstage_conf_fields(int *n) {
    if (n) *n = (int)RS_ARRAY_LEN(rs_cpstage_fields);
    return rs_cpstage_fields;
}

void rs_cpstage_conf_section(rs_conf_section_t *sec, rs_cpstage_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "cpstage";
    sec->desc = "counterparty stage: non-entity features exact across the "
                "instances of a consumer group (docs/features.md)";
    sec->fields = rs_cpstage_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_cpstage_fields);
    sec->base = conf;
}

void rs_cpstage_conf_init(rs_cpstage_conf_t *conf) {
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_cpstage_conf_section(&sec, conf);
    rs_conf_t *c = rs_conf_new();
    if (rs_conf_add_section(c, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("cpstage", "defaults: %s", errstr); /* table bug */
    rs_conf_destroy(c);
}

int rs_cpstage_wanted(const rs_cpstage_conf_t *conf,
                      const rs_features_conf_t *fconf) {
    if (!conf->enabled) return 0;
    rs_features_spec_t *sp = rs_calloc(RS_FEATURES_MAX_SPECS, sizeof(*sp));
    char errstr[256];
    int n = rs_features_conf_specs(fconf, sp, errstr, sizeof(errstr)), any = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(sp[i].key, "entity")) any = 1;
    free(sp);
    return any;
}

uint64_t rs_cpstage_conf_mem(const rs_features_conf_t *fconf) {
    rs_features_conf_t fc = *fconf;
    fc.max_keys = 1;
    rs_mem_item_t it[4];
    int n = 0, dim = 0;
    char errstr[256];
    if (rs_features_conf_mem(&fc, it, 4, &n, &dim, errstr, sizeof(errstr)) !=
        RS_OK)
        return 0;
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) sum += it[i].bytes;
    return sum;
}

/* --------------------------------------------------------------- state */

struct rs_cpstage_s {
    rs_cpstage_conf_t conf;
    rs_features_conf_t fconf;
    rs_ingest_conf_t icon;
    int64_t dedup_window_ms, dedup_max;
    rd_kafka_t *rk;
    rd_kafka_queue_t *rkq;     /* its consumer queue (a starved lookup
                                * wakes the stage thread's poll)        */
    int64_t fetch_wait_ms; /* its consumer's fetch.wait.max.ms (stats)    */
    pthread_t th;
    int th_started;
    _Atomic int stop;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    rs_cpm_t *m;               /* NULL until the partitions are known    */
    int nsh;
    int *sh;                   /* [nsh] shared feature indexes           */
    int waiting;               /* scoring-thread lookups waiting         */
    rs_ingest_t *ing;          /* the feed's consumer (rs_cpstage_attach)
                                * or NULL                                */
    uint64_t feed_gen;         /* its tap's gen at the last chunk        */
    int feed_seen;             /* a chunk came                           */
    int64_t seen_ms;           /* the merge's idle_wait clock (the stage
                                * thread's; a waiting lookup steps with it) */
    uint64_t merged_waiting;   /* messages merged by waiting lookups     */
    int caught_up;             /* the store read every partition once    */
    int nparts[2];
    uint8_t *paused[2];        /* [RS_CS_MAX_PARTS] its consumer's fetch
                                * paused (bufp or fed)                    */
    uint8_t *bufp[2];          /* [RS_CS_MAX_PARTS] ... for its raw buffer */
    uint8_t *fed[2];           /* [RS_CS_MAX_PARTS] ... for the feed: it
                                * pushed there in its current gen         */
    int64_t *late_end[2];      /* [RS_CS_MAX_PARTS] feed_late: the end
                                * offset when the feed was first seen
                                * behind there (-1: not behind)           */
    int64_t *late_ms[2];       /* [RS_CS_MAX_PARTS] ... since when        */
    uint64_t feed_pauses;      /* partitions paused for the feed          */
    uint64_t feed_moved;       /* ... resumed: the feed's gen moved       */
    uint64_t feed_late;        /* ... resumed: the feed late (> 1 s)      */
    uint64_t feed_starved;     /* ... resumed: a lookup waits, the
                                * read-ahead is full                      */
    int64_t *committed;        /* [RS_CS_MAX_PARTS] events topic, -1      */
    int64_t *hold;             /* [RS_CS_MAX_PARTS] replay floor, -1      */
    int64_t *keep;             /* [RS_CS_MAX_PARTS] events topic: the
                                * lowest offset the feed handed this
                                * instance's scoring thread that it has not
                                * looked up yet (-1: none); not dropped
                                * while this instance is assigned the
                                * partition, whatever the group committed */
    uint64_t trims;            /* committed-offset queries done           */
    rs_hist_t wait_us;
    uint64_t filled, miss_timeout, miss_gone, pauses, replay_missing;
    rs_tmerge_log_t reorder_log; /* reorders logged (RS_CS_REORDER_LOG_US) */
    double cpu_s;
    int64_t next_warn_us;
    uint64_t warned_misses;
};

/* --------------------------------------------------------------- thread */

/* A raw message's handle: the stage consumer's rd_kafka_message_t, or
 * (low bit set) a copy of a fed payload (rs_cs_feed). */
static void rs_cs_release(void *handle) {
    if (!handle) return; /* a fed duplicate, not copied */
    if ((uintptr_t)handle & 1) free((char *)handle - 1);
    else rd_kafka_message_destroy((rd_kafka_message_t *)handle);
}

static int rs_cs_topic_idx(const rs_cpstage_t *cs, const char *name) {
    if (!strcmp(name, cs->icon.topic_events)) return 0;
    if (!strcmp(name, cs->icon.topic_labels)) return 1;
    return -1;
}

/* Partitions of `topic`, 0 if unknown yet. */
static int rs_cs_nparts(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    return n;
}

static double rs_cs_thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Discover the partitions, make the core, assign every partition from the
 * beginning.  0 once done, -1 to retry (Kafka unreachable, topics not
 * created yet). */
static int rs_cs_setup(rs_cpstage_t *cs) {
    int n0 = rs_cs_nparts(cs->rk, cs->icon.topic_events);
    int n1 = rs_cs_nparts(cs->rk, cs->icon.topic_labels);
    if (n0 <= 0 || n1 <= 0) return -1;
    if (n0 > RS_CS_MAX_PARTS) n0 = RS_CS_MAX_PARTS;
    if (n1 > RS_CS_MAX_PARTS) n1 = RS_CS_MAX_PARTS;
    char errstr[512];
    rs_cpm_conf_t mc = {
        .features = &cs->fconf,
        .events_format = cs->icon.events_format,
        .labels_format = cs->icon.labels_format,
        .nparts = {n0, n1},
        .dedup_window_ms = cs->dedup_window_ms,
        .dedup_max = cs->dedup_max,
        .future_skew_ms = cs->icon.future_skew_ms,
        .idle_wait_ms = cs->conf.idle_wait_ms,
        .release = rs_cs_release,
    };
    rs_cpm_t *m = rs_cpm_new(&mc, errstr, sizeof(errstr));
    if (!m) { /* validated by rs_cpstage_new: not expected */
        rs_error("cpstage", "store: %s", errstr);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(n0 + n1);
    for (int i = 0; i < n0; i++)
        rd_kafka_topic_partition_list_add(l, cs->icon.topic_events, i)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    for (int i = 0; i < n1; i++)
        rd_kafka_topic_partition_list_add(l, cs->icon.topic_labels, i)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t kerr = rd_kafka_assign(cs->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (kerr) {
        rs_warn("cpstage", "assign: %s (retrying)", rd_kafka_err2str(kerr));
        rs_cpm_destroy(m);
        return -1;
    }
    pthread_mutex_lock(&cs->mu);
    cs->m = m;
    cs->nparts[0] = n0;
    cs->nparts[1] = n1;
    pthread_mutex_unlock(&cs->mu);
    rs_info("cpstage", "reading all %d partitions of '%s' and %d of '%s' from "
            "the beginning into the counterparty store (%d shared features)",
            n0, cs->icon.topic_events, n1, cs->icon.topic_labels, cs->nsh);
    return 0;
}

/* The group's committed offsets of the events partitions: results below
 * them (and below a held replay position) are dropped. */
static void rs_cs_trim(rs_cpstage_t *cs) {
    int n0 = cs->nparts[0];
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n0);
    for (int i = 0; i < n0; i++)
        rd_kafka_topic_partition_list_add(l, cs->icon.topic_events, i);
    rd_kafka_resp_err_t kerr = rd_kafka_committed(cs->rk, l, 5000);
    /* The scoring consumer's assignment, read after the committed offsets:
     * a partition it is still assigned keeps what its scoring thread has
     * not looked up (cs->keep) -- the group may have committed past it
     * meanwhile: this instance's session lost and another member scoring
     * the partition, while this one still takes its read-ahead (a revoke
     * is served between two batches). */
    pthread_mutex_lock(&cs->mu);
    rs_ingest_t *ing = cs->ing;
    pthread_mutex_unlock(&cs->mu);
    rd_kafka_topic_partition_list_t *own = NULL;
    if (ing && rd_kafka_assignment(rs_ingest_handle(ing), &own) && own) {
        rd_kafka_topic_partition_list_destroy(own);
        own = NULL;
    }
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; !kerr && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->partition < 0 || tp->partition >= n0 || tp->err) continue;
        int64_t c = tp->offset >= 0 ? tp->offset : -1;
        cs->committed[tp->partition] = c;
        int64_t floor = c < 0 ? 0 : c;
        if (cs->hold[tp->partition] >= 0 && cs->hold[tp->partition] < floor)
            floor = cs->hold[tp->partition];
        int64_t *kp = &cs->keep[tp->partition];
        if (*kp >= 0 && !(own && rd_kafka_topic_partition_list_find(
                                     own, cs->icon.topic_events,
                                     tp->partition)))
            *kp = -1; /* not this instance's (any more) */
        if (*kp >= 0 && *kp < floor) floor = *kp;
        rs_cpm_trim(cs->m, tp->partition, floor);
    }
    if (!kerr) cs->trims++;
    pthread_mutex_unlock(&cs->mu);
    if (own) rd_kafka_topic_partition_list_destroy(own);
    rd_kafka_topic_partition_list_destroy(l);
}

/* The merge waits for partition (t, part), which has no message left and
 * was not reported at its end by the consumer (rs_cpm_step's blocked
 * partition): the cached high watermarks -- set by every fetch response,
 * read here without a broker round trip -- of every reader of it (the
 * stage's consumer, and the feed's when it fetches the partition) say
 * whether every message of it has been pushed, one fetch sooner than its
 * PARTITION_EOF (which librdkafka only reports from the next fetch, one
 * the broker holds up to fetch.wait.max.ms when nothing else comes: the
 * round trip every event waited per quiet partition).  The maximum of the
 * watermarks: the merge never passes a partition that one of its readers
 * knows has data not pushed yet.  1 if it is at its end now.  Called with
 * mu held; the watermarks are read WITHOUT it (librdkafka's locks are not
 * taken under it, so a lookup of the scoring thread never waits behind
 * them).  Two threads push (the stage's and the feed's) and a lookup may
 * run this too, so the partition is marked only if nothing was pushed on
 * it between the reads and the mark (its end offset, which grows with
 * every push, is unchanged): a watermark read before a push never passes
 * the data that push made known.  Returns with mu held. */
static int rs_cs_hwm_locked(rs_cpstage_t *cs, int t, int32_t part) {
    int64_t end0 = rs_cpm_end_off(cs->m, t, part), lo = -1, hi = -1;
    rs_ingest_t *ing = cs->ing;
    pthread_mutex_unlock(&cs->mu);
    if (rd_kafka_get_watermark_offsets(
            cs->rk, t ? cs->icon.topic_labels : cs->icon.topic_events, part,
            &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hi = -1;
    if (ing) {
        int64_t fhi = rs_ingest_watermark(ing, t, part);
        if (fhi > hi) hi = fhi;
    }
    pthread_mutex_lock(&cs->mu);
    if (rs_cpm_end_off(cs->m, t, part) != end0) return 0;
    return rs_cpm_hwm(cs->m, t, part, hi, rs_clock_mono_us() / 1000);
}

/* rs_cs_hwm_locked for the stage thread (called without mu). */
static int rs_cs_hwm_end(rs_cpstage_t *cs, int t, int32_t part) {
    pthread_mutex_lock(&cs->mu);
    int r = rs_cs_hwm_locked(cs, t, part);
    pthread_mutex_unlock(&cs->mu);
    return r;
}

/* Pause fetching where the raw buffer is full (resume where it drained)
 * or where the feed supplies the partition (cs->fed: one read of it, the
 * read-ahead's, not two).  A partition resumed is first sought to the
 * end of what was pushed (everything below it was: the core's pushed
 * sequence is the partition's), so the consumer does not fetch again
 * what the feed pushed while it was paused.  Called with mu held.
 * @locality the stage thread (it owns the consumer) */
static void rs_cs_flow(rs_cpstage_t *cs) {
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < cs->nparts[t]; i++) {
            uint32_t q = rs_cpm_buffered(cs->m, t, i);
            if (q >= (uint32_t)cs->conf.buffer) cs->bufp[t][i] = 1;
            else if (q <= (uint32_t)cs->conf.buffer / 2) cs->bufp[t][i] = 0;
            int want = cs->bufp[t][i] || cs->fed[t][i];
            if (want == cs->paused[t][i]) continue;
            const char *tn = t ? cs->icon.topic_labels : cs->icon.topic_events;
            rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_add(l, tn, i);
            if (want) {
                rd_kafka_pause_partitions(cs->rk, l);
                if (cs->fed[t][i]) cs->feed_pauses++;
                cs->late_end[t][i] = -1;
            } else {
                int64_t end = rs_cpm_end_off(cs->m, t, i);
                if (end > 0) { /* async: queued before the resume */
                    tp->offset = end;
                    rd_kafka_error_t *e = rd_kafka_seek_partitions(cs->rk, l, 0);
                    if (e) rd_kafka_error_destroy(e);
                }
                rd_kafka_resume_partitions(cs->rk, l);
            }
            rd_kafka_topic_partition_list_destroy(l);
            cs->paused[t][i] = (uint8_t)want;
        }
}

/* Reorders since the last log (ms: the core's counters): one warning the
 * first time, then a summary at most every RS_CS_REORDER_LOG_US at info;
 * at the end (final) one warning with the totals.  Called with mu held
 * (the log line is short and rare). */
static void rs_cs_reorder_log(rs_cpstage_t *cs, const rs_cpm_stats_t *ms,
                              int final) {
    char adv[256];
    int64_t now = rs_clock_mono_us();
    const char *topic = ms->reorder_topic ? cs->icon.topic_labels
                                          : cs->icon.topic_events;
    if (final) {
        if (!ms->reordered) return;
        rs_tmerge_late_advice("cpstage.idle_wait", ms->reorder_late,
                              ms->reordered, adv, sizeof(adv));
        rs_warn("cpstage", "%llu of %llu messages were merged out of the "
                "canonical order (cpstage.idle_wait %lld ms; at most %lld ms "
                "late; the wait that would have merged them in order: %s; "
                "README, Scale-out)",
                (unsigned long long)ms->reordered,
                (unsigned long long)(ms->events + ms->labels),
                (long long)cs->conf.idle_wait_ms,
                (long long)ms->reorder_late_max_ms, adv);
        return;
    }
    uint64_t n = 0;
    int64_t secs = 0;
    int what = rs_tmerge_log_step(&cs->reorder_log, ms->reorder_late,
                                  ms->reordered, now, RS_CS_REORDER_LOG_US,
                                  "cpstage.idle_wait", adv, sizeof(adv),
                                  &n, &secs);
    if (what == 1)
        rs_warn("cpstage", "a message on %s/%d was merged out of the "
                "canonical order (%llu so far): it reached the stage %s%lld "
                "ms (ms clock) after the first of the newer messages merged "
                "ahead of it, %lld ms of event time behind them; "
                "cpstage.idle_wait %lld ms, %lld ms would have merged it in "
                "order (every event waits up to that while a partition is "
                "quiet: README, Scale-out).  Its counterparty features may "
                "differ from a replay's; counted in "
                "riskstream_cpstage_reordered_total, summed up every minute "
                "(info) and at the end",
                topic, (int)ms->reorder_part,
                (unsigned long long)ms->reordered,
                ms->reorder_late_min ? "at least " : "",
                (long long)ms->reorder_late_ms,
                (long long)ms->reorder_behind_ms,
                (long long)cs->conf.idle_wait_ms,
                (long long)ms->reorder_late_ms + 1);
    else if (what == 2)
        rs_info("cpstage", "%llu message(s) merged out of the canonical "
                "order in the last %lld s (%llu of %llu in all; "
                "cpstage.idle_wait %lld ms); the wait that would have merged "
                "them in order: %s; the last on %s/%d, %lld ms late",
                (unsigned long long)n, (long long)secs,
                (unsigned long long)ms->reordered,
                (unsigned long long)(ms->events + ms->labels),
                (long long)cs->conf.idle_wait_ms, adv, topic,
                (int)ms->reorder_part, (long long)ms->reorder_late_ms);
}

/* The feed stops supplying every partition (its gen moved: a rebalance,
 * a seek, a pause of the scoring consumer): the stage's consumer fetches
 * them again (rs_cs_flow) until the feed pushes there again.  librdkafka
 * keeps a partition's pause across a revoke and assign, so the scoring
 * consumer's own partitions are not the question here: these are the
 * stage's, which only the stage pauses.  Called with mu held. */
static void rs_cs_unfeed_all(rs_cpstage_t *cs) {
    int any = 0;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < cs->nparts[t]; i++) {
            any |= cs->fed[t][i] && cs->paused[t][i];
            cs->fed[t][i] = 0;
        }
    if (any) cs->feed_moved++;
}

/* feed_late: a partition paused for the feed on which the feed has not
 * moved for RS_CS_LATE_MS while the scoring consumer's cached watermark
 * shows data not pushed (or it has none: the partition left it without a
 * gen change seen) is fetched by the stage again -- the backstop for a
 * feed that stops for any reason the rules above do not see.  Called
 * without mu (the watermarks are read without it).
 * @locality the stage thread */
static void rs_cs_feed_late(rs_cpstage_t *cs) {
    int64_t late = atomic_load(&rs_cpstage_test_late_ms);
    if (late <= 0) late = RS_CS_LATE_MS;
    int64_t now = rs_clock_mono_us() / 1000;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < cs->nparts[t]; i++) {
            pthread_mutex_lock(&cs->mu);
            int cand = cs->fed[t][i] && cs->paused[t][i] && cs->ing;
            int64_t end = rs_cpm_end_off(cs->m, t, i);
            rs_ingest_t *ing = cs->ing;
            pthread_mutex_unlock(&cs->mu);
            if (!cand) continue;
            int64_t hi = rs_ingest_watermark(ing, t, i);
            pthread_mutex_lock(&cs->mu);
            if (!cs->fed[t][i] || rs_cpm_end_off(cs->m, t, i) != end) {
                cs->late_end[t][i] = -1; /* the feed moved there */
            } else if (hi >= 0 && hi <= end) {
                cs->late_end[t][i] = -1; /* nothing to read */
            } else if (cs->late_end[t][i] != end) {
                cs->late_end[t][i] = end; /* behind since now */
                cs->late_ms[t][i] = now;
            } else if (now - cs->late_ms[t][i] > late) {
                cs->fed[t][i] = 0;
                cs->late_end[t][i] = -1;
                cs->feed_late++;
                rs_info("cpstage", "%s/%d: the feed has not moved for %lld ms "
                        "with data to read (watermark %lld, pushed to %lld): "
                        "the stage's consumer reads it again",
                        t ? cs->icon.topic_labels : cs->icon.topic_events, i,
                        (long long)(now - cs->late_ms[t][i]), (long long)hi,
                        (long long)end);
            }
            pthread_mutex_unlock(&cs->mu);
        }
}

/* A partition paused for the feed that the merge holds at its end: its
 * only reader now is the feed, whose push would clear that end; if the
 * scoring consumer's cached watermark shows data past what was pushed
 * (the read-ahead has not handed it on yet), it is not at its end: the
 * merge waits for it instead of passing it (as it would, idle_wait 0,
 * while the stage's own consumer had not read a message yet: here that
 * window is the feed's, longer when the read-ahead is full).  Called
 * without mu (the watermarks are read without it).
 * @locality the stage thread */
static void rs_cs_fed_ends(rs_cpstage_t *cs) {
    int32_t tp[64];
    int64_t end[64];
    int n = 0;
    pthread_mutex_lock(&cs->mu);
    rs_ingest_t *ing = cs->ing;
    for (int t = 0; ing && t < 2; t++)
        for (int i = 0; i < cs->nparts[t] && n < 64; i++)
            if (cs->fed[t][i] && cs->paused[t][i]) {
                tp[n] = t * RS_CS_MAX_PARTS + i;
                end[n++] = rs_cpm_end_off(cs->m, t, i);
            }
    pthread_mutex_unlock(&cs->mu);
    int64_t hi[64];
    for (int k = 0; k < n; k++)
        hi[k] = rs_ingest_watermark(ing, tp[k] / RS_CS_MAX_PARTS,
                                    tp[k] % RS_CS_MAX_PARTS);
    if (!n) return;
    pthread_mutex_lock(&cs->mu);
    for (int k = 0; k < n; k++) {
        int t = tp[k] / RS_CS_MAX_PARTS, i = tp[k] % RS_CS_MAX_PARTS;
        if (hi[k] > end[k] && rs_cpm_end_off(cs->m, t, i) == end[k])
            rs_cpm_not_end(cs->m, t, i, hi[k]);
    }
    pthread_mutex_unlock(&cs->mu);
}

static void *rs_cs_main(void *arg) {
    rs_cpstage_t *cs = arg;
    /* its own name in top, perf and ops/bench/idle_cpu.py */
    pthread_setname_np(pthread_self(), "rs-cpstage");
    int64_t retry_us = 0, trim_us = 0, late_us = 0;
    int warned = 0;
    while (!atomic_load(&cs->stop) && !cs->m) {
        int64_t now = rs_clock_mono_us();
        if (now >= retry_us) {
            if (rs_cs_setup(cs) == 0) break;
            if (!warned++)
                rs_info("cpstage", "waiting for the topics '%s' and '%s' "
                        "(counterparty store)", cs->icon.topic_events,
                        cs->icon.topic_labels);
            retry_us = now + 500000;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    int can_step = 0;
    /* The merge's clock (idle_wait): the last time the consumer was found
     * with nothing more queued, not the time of the step: after this
     * thread was descheduled, or with more queued than one turn takes, a
     * partition at its end has not been seen without messages for that
     * long -- its messages may be waiting in the consumer's queue -- and
     * must not be passed as idle. */
    int64_t seen_ms = rs_clock_mono_us() / 1000;
    pthread_mutex_lock(&cs->mu);
    cs->seen_ms = seen_ms;
    pthread_mutex_unlock(&cs->mu);
    while (!atomic_load(&cs->stop)) {
        /* 1. what the consumer holds (wait only if the merge is stuck) */
        rd_kafka_message_t *rkm[64];
        int got = 0;
        if (atomic_load(&rs_cpstage_test_noread)) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        for (int k = 0; !atomic_load(&rs_cpstage_test_noread) &&
                        k < RS_CS_POLL_MAX / 64; k++) {
            int tmo = (k == 0 && !can_step) ? 20 : 0, n = 0;
            rd_kafka_message_t *r = NULL;
            while (n < 64) {
                r = rd_kafka_consumer_poll(cs->rk, n ? 0 : tmo);
                if (!r) break;
                rkm[n++] = r;
                tmo = 0;
            }
            int64_t now_ms = rs_clock_mono_us() / 1000;
            if (!r) seen_ms = now_ms; /* drained: nothing more queued */
            if (!n) break;
            pthread_mutex_lock(&cs->mu);
            cs->seen_ms = seen_ms;
            rs_cpm_arrival(cs->m, now_ms);
            for (int j = 0; j < n; j++) {
                rd_kafka_message_t *r = rkm[j];
                int t = r->rkt ? rs_cs_topic_idx(cs, rd_kafka_topic_name(r->rkt))
                               : -1;
                if (r->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    /* its end at r->offset: stale if the feed pushed
                     * past it meanwhile (the end of what was pushed is
                     * not known to be the partition's) */
                    if (t >= 0 && (r->offset < 0 ||
                                   r->offset >= rs_cpm_end_off(
                                                    cs->m, t, r->partition)))
                        rs_cpm_eof(cs->m, t, r->partition, now_ms);
                    rd_kafka_message_destroy(r);
                } else if (r->err) {
                    rs_warn("cpstage", "consumer: %s",
                            rd_kafka_message_errstr(r));
                    rd_kafka_message_destroy(r);
                } else if (t < 0) {
                    rd_kafka_message_destroy(r);
                } else {
                    rs_cpm_push(cs->m, t, r->partition, r->offset, r->payload,
                                r->len, r); /* released by the core */
                }
            }
            pthread_mutex_unlock(&cs->mu);
            got += n;
            if (n < 64) break;
        }
        /* 2. merge, in chunks (lookups get in between) */
        rs_cs_fed_ends(cs);
        int merged = 0;
        can_step = 0;
        for (;;) {
            pthread_mutex_lock(&cs->mu);
            rs_cpm_stats_t ms;
            rs_cpm_stats(cs->m, &ms);
            if (ms.held >= (uint64_t)cs->conf.max_pending && !cs->waiting) {
                cs->pauses++;
                pthread_mutex_unlock(&cs->mu);
                break; /* the commits must catch up */
            }
            cs->seen_ms = seen_ms;
            if (atomic_load(&rs_cpstage_test_nomerge)) {
                pthread_mutex_unlock(&cs->mu);
                break;
            }
            int n = rs_cpm_step(cs->m, seen_ms, RS_CS_CHUNK);
            if (n) pthread_cond_broadcast(&cs->cv);
            rs_cpm_stats(cs->m, &ms);
            if (ms.reordered > cs->reorder_log.logged)
                rs_cs_reorder_log(cs, &ms, 0);
            if (n < RS_CS_CHUNK) {
                rs_cs_flow(cs);
                pthread_mutex_unlock(&cs->mu);
                /* blocked by a partition the watermark may show at its
                 * end: then merge on */
                if (ms.blocked_topic >= 0 &&
                    rs_cs_hwm_end(cs, ms.blocked_topic, ms.blocked_part)) {
                    merged += n;
                    continue;
                }
                break;
            }
            pthread_mutex_unlock(&cs->mu);
            merged += n;
            if (merged >= 8 * RS_CS_CHUNK) { can_step = 1; break; }
        }
        if (!got && !merged) {
            pthread_mutex_lock(&cs->mu);
            rs_cs_flow(cs); /* resume where the merge drained */
            pthread_mutex_unlock(&cs->mu);
        }
        int64_t now = rs_clock_mono_us();
        if (now >= late_us) {
            rs_cs_feed_late(cs);
            late_us = now + RS_CS_LATE_CHECK_MS * 1000;
        }
        if (now >= trim_us) {
            rs_cs_trim(cs);
            trim_us = now + RS_CS_TRIM_US;
            double cpu = rs_cs_thread_cpu();
            pthread_mutex_lock(&cs->mu);
            cs->cpu_s = cpu;
            pthread_mutex_unlock(&cs->mu);
        }
    }
    double cpu = rs_cs_thread_cpu();
    pthread_mutex_lock(&cs->mu);
    cs->cpu_s = cpu;
    pthread_cond_broadcast(&cs->cv);
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

/* ---------------------------------------------------------------- feed */

/* The read-ahead's tap (rs_ingest_tap_fn): push each message into the
 * core as the feed source; the core keeps it only if it is its
 * partition's next one (rs_cpm_push_from), so each message is merged once,
 * from whichever reader had it first.  The payloads that may be needed
 * (at or past the end of what was pushed when looked at: that end only
 * grows) are copied (the Kafka messages stay the read-ahead's) with mu
 * released; the others go to the core without a payload, for its count
 * and its view of the feed's position.
 * @locality the read-ahead thread */
static void rs_cs_feed(void *opaque, const rs_ingest_tap_msg_t *msgs, int n,
                       uint64_t gen) {
    rs_cpstage_t *cs = opaque;
    void *h[64];
    if (n == 0) { /* the gen moved without a message: a revoke, a pause */
        pthread_mutex_lock(&cs->mu);
        if (cs->m && (!cs->feed_seen || gen != cs->feed_gen)) {
            rs_cpm_src_reset(cs->m, RS_CPM_SRC_FEED);
            rs_cs_unfeed_all(cs);
            cs->feed_seen = 1;
            cs->feed_gen = gen;
        }
        pthread_mutex_unlock(&cs->mu);
        return;
    }
    for (int i0 = 0; i0 < n; i0 += 64) {
        int k = RS_MIN(64, n - i0);
        pthread_mutex_lock(&cs->mu);
        if (!cs->m) { /* the partitions are not known yet */
            pthread_mutex_unlock(&cs->mu);
            continue;
        }
        for (int j = 0; j < k; j++) {
            const rs_ingest_tap_msg_t *tm = &msgs[i0 + j];
            h[j] = tm->offset >= rs_cpm_end_off(cs->m, tm->topic, tm->partition)
                       ? (void *)1 : NULL;
        }
        pthread_mutex_unlock(&cs->mu);
        for (int j = 0; j < k; j++) {
            if (!h[j]) continue;
            const rs_ingest_tap_msg_t *tm = &msgs[i0 + j];
            char *c = rs_malloc(tm->len + 2); /* + 1: the tag, below */
            if (tm->len) memcpy(c + 1, tm->payload, tm->len);
            h[j] = c + 1; /* odd: a copy (rs_cs_release) */
        }
        pthread_mutex_lock(&cs->mu);
        if (!cs->feed_seen || gen != cs->feed_gen) { /* it moved */
            rs_cpm_src_reset(cs->m, RS_CPM_SRC_FEED); /* in step again */
            rs_cs_unfeed_all(cs); /* and until then the stage reads */
        }
        cs->feed_seen = 1;
        cs->feed_gen = gen;
        rs_cpm_arrival(cs->m, rs_clock_mono_us() / 1000);
        for (int j = 0; j < k; j++) {
            const rs_ingest_tap_msg_t *tm = &msgs[i0 + j];
            if (tm->topic == RS_MSG_TOPIC_EVENTS && tm->partition >= 0 &&
                tm->partition < RS_CS_MAX_PARTS &&
                (cs->keep[tm->partition] < 0 ||
                 tm->offset < cs->keep[tm->partition]))
                cs->keep[tm->partition] = tm->offset; /* to be looked up */
            if (rs_cpm_push_from(cs->m, RS_CPM_SRC_FEED, tm->topic,
                                 tm->partition, tm->offset, h[j],
                                 h[j] ? tm->len : 0, h[j]) == 0)
                cs->fed[tm->topic][tm->partition] = 1; /* in step there:
                                                        * the stage pauses */
        }
        if (cs->waiting) pthread_cond_broadcast(&cs->cv);
        pthread_mutex_unlock(&cs->mu);
    }
}

void rs_cpstage_attach(rs_cpstage_t *cs, rs_ingest_t *ing) {
    if (!cs->conf.feed || !ing) return;
    pthread_mutex_lock(&cs->mu);
    cs->ing = ing;
    pthread_mutex_unlock(&cs->mu);
    rs_ingest_set_tap(ing, rs_cs_feed, cs);
}

/* -------------------------------------------------------- create/destroy */

rs_cpstage_t *rs_cpstage_new(const rs_cpstage_opts_t *o, rs_err_t *err_out,
                             char *errstr, size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "5"},
    };
    rs_err_t err = RS_ERR_CONFIG;
    rd_kafka_conf_t *kc = NULL;
    rs_cpstage_t *cs = rs_calloc(1, sizeof(*cs));
    cs->conf = *o->conf;
    cs->fconf = *o->features;
    cs->icon = *o->ingest;
    cs->dedup_window_ms = o->dedup_window_ms;
    cs->dedup_max = o->dedup_max;
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->cv, NULL);
    rs_hist_init(&cs->wait_us);
    for (int t = 0; t < 2; t++) {
        cs->paused[t] = rs_calloc(RS_CS_MAX_PARTS, 1);
        cs->bufp[t] = rs_calloc(RS_CS_MAX_PARTS, 1);
        cs->fed[t] = rs_calloc(RS_CS_MAX_PARTS, 1);
        cs->late_end[t] = rs_calloc(RS_CS_MAX_PARTS, sizeof(int64_t));
        cs->late_ms[t] = rs_calloc(RS_CS_MAX_PARTS, sizeof(int64_t));
        for (int i = 0; i < RS_CS_MAX_PARTS; i++) cs->late_end[t][i] = -1;
    }
    cs->committed = rs_calloc(RS_CS_MAX_PARTS, sizeof(int64_t));
    cs->hold = rs_calloc(RS_CS_MAX_PARTS, sizeof(int64_t));
    cs->keep = rs_calloc(RS_CS_MAX_PARTS, sizeof(int64_t));
    for (int i = 0; i < RS_CS_MAX_PARTS; i++)
        cs->committed[i] = cs->hold[i] = cs->keep[i] = -1;
    {
        /* The layout's shared features, from a minimal handle (the store
         * is made by the thread once the partitions are known). */
        rs_features_conf_t fc = cs->fconf;
        fc.max_keys = fc.max_counterparties = fc.label_index = 1;
        rs_features_t *f = rs_features_new(&fc, errstr, errstr_size);
        if (!f) goto fail;
        int dim = rs_features_dim(f);
        cs->sh = rs_calloc((size_t)dim + 1, sizeof(int));
        for (int i = 0; i < dim; i++)
            if (rs_features_is_shared(f, i)) cs->sh[cs->nsh++] = i;
        rs_features_destroy(f);
    }
    const char *boot = o->bootstrap && *o->bootstrap ? o->bootstrap
                                                     : o->ingest->brokers;
    int embedded = !o->ingest->brokers[0];
    if (rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, o->kafka, boot, defaults,
                                (int)RS_ARRAY_LEN(defaults) - (embedded ? 0 : 1),
                                &kc, errstr, errstr_size) != RS_OK ||
        /* the group only to read its committed offsets: assign(), never
         * subscribe or commit */
        rs_kafka_conf_set1(kc, "group.id", o->ingest->group_id, errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kc, "enable.auto.commit", "false", errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kc, "enable.auto.offset.store", "false", errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kc, "client.id", "riskstream-cpstage", errstr,
                           errstr_size) != RS_OK ||
        (o->exactly_once &&
         rs_kafka_conf_set1(kc, "isolation.level", "read_committed", errstr,
                            errstr_size) != RS_OK))
        goto fail;
    if (cs->conf.fetch_wait_ms >= 0 ||
        (cs->conf.fetch_wait_ms == RS_CONF_AUTO && o->on_mock)) {
        /* i12cpu3 hook: its own fetch wait (cpstage.fetch_wait) */
        char fw[32];
        snprintf(fw, sizeof(fw), "%lld",
                 cs->conf.fetch_wait_ms >= 0 ? (long long)cs->conf.fetch_wait_ms
                                             : 1LL);
        if (rs_kafka_conf_set1(kc, "fetch.wait.max.ms", fw, errstr,
                               errstr_size) != RS_OK)
            goto fail;
    }
    char buf[512];
    cs->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, buf, sizeof(buf));
    if (!cs->rk) {
        err = RS_ERR_KAFKA;
        rs_errf(errstr, errstr_size, err, "cpstage: consumer: %s", buf);
        goto fail;
    }
    kc = NULL;
    {
        char fw[32];
        size_t fwn = sizeof(fw);
        cs->fetch_wait_ms =
            rd_kafka_conf_get(rd_kafka_conf(cs->rk), "fetch.wait.max.ms", fw,
                              &fwn) == RD_KAFKA_CONF_OK
                ? atoll(fw)
                : -1;
    }
    rd_kafka_poll_set_consumer(cs->rk);
    cs->rkq = rd_kafka_queue_get_consumer(cs->rk);
    if (pthread_create(&cs->th, NULL, rs_cs_main, cs) != 0) {
        err = RS_ERR_NOMEM;
        rs_errf(errstr, errstr_size, err, "cpstage: cannot start its thread");
        goto fail;
    }
    cs->th_started = 1;
    if (err_out) *err_out = RS_OK;
    return cs;
fail:
    if (kc) rd_kafka_conf_destroy(kc);
    if (err_out) *err_out = err;
    rs_cpstage_destroy(cs);
    return NULL;
}

void rs_cpstage_destroy(rs_cpstage_t *cs) {
    if (!cs) return;
    if (cs->ing) /* no feed call after this one */
        rs_ingest_set_tap(cs->ing, NULL, NULL);
    if (cs->th_started) {
        atomic_store(&cs->stop, 1);
        pthread_join(cs->th, NULL);
    }
    if (cs->m) {
        rs_cpm_stats_t ms;
        rs_cpm_stats(cs->m, &ms);
        rs_info("cpstage", "merged %llu events and %llu labels (%llu "
                "reordered, %llu duplicates, %llu rejected); served %llu "
                "events (%llu timeouts, %llu gone), wait p50 %lld us, p99 "
                "%lld us; %llu messages merged by waiting lookups; input "
                "from its consumer %llu (%llu duplicates), from the feed "
                "%llu (%llu duplicates, %llu ahead); thread CPU %.2f s (%.2f us per merged message); "
                "%llu replayed events without a result (dropped); "
                "partitions found at their end %llu times by the high "
                "watermark, %llu by PARTITION_EOF",
                (unsigned long long)ms.events, (unsigned long long)ms.labels,
                (unsigned long long)ms.reordered,
                (unsigned long long)ms.duplicates,
                (unsigned long long)ms.rejected,
                (unsigned long long)cs->filled,
                (unsigned long long)cs->miss_timeout,
                (unsigned long long)cs->miss_gone,
                (long long)rs_hist_quantile(&cs->wait_us, 0.5),
                (long long)rs_hist_quantile(&cs->wait_us, 0.99),
                (unsigned long long)cs->merged_waiting,
                (unsigned long long)ms.src_pushed[0],
                (unsigned long long)ms.src_dup[0],
                (unsigned long long)ms.src_pushed[1],
                (unsigned long long)ms.src_dup[1],
                (unsigned long long)ms.src_gap[1], cs->cpu_s,
                ms.events + ms.labels
                    ? cs->cpu_s * 1e6 / (double)(ms.events + ms.labels)
                    : 0.0,
                (unsigned long long)cs->replay_missing,
                (unsigned long long)ms.ends_hwm,
                (unsigned long long)ms.ends_eof);
        rs_cs_reorder_log(cs, &ms, 1);
    }
    if (cs->ing)
        rs_info("cpstage", "feed: the stage's consumer paused %llu "
                "partition(s) the feed supplied; fetched again %llu time(s) "
                "as the feed moved, %llu starved, %llu late",
                (unsigned long long)cs->feed_pauses,
                (unsigned long long)cs->feed_moved,
                (unsigned long long)cs->feed_starved,
                (unsigned long long)cs->feed_late);
    rs_cpm_destroy(cs->m); /* its messages go before their consumer */
    if (cs->rkq) rd_kafka_queue_destroy(cs->rkq);
    if (cs->rk) {
        rd_kafka_consumer_close(cs->rk);
        rd_kafka_destroy(cs->rk);
    }
    for (int t = 0; t < 2; t++) {
        free(cs->paused[t]);
        free(cs->bufp[t]);
        free(cs->fed[t]);
        free(cs->late_end[t]);
        free(cs->late_ms[t]);
    }
    free(cs->committed);
    free(cs->hold);
    free(cs->keep);
    free(cs->sh);
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

/* ------------------------------------------------------ scoring thread */

/* A lookup found its result missing: run the merge on this thread (one
 * chunk, with the stage thread's idle_wait clock, so the merged sequence
 * is the one the stage thread would make); if it is blocked on a
 * partition with no message left, check that partition's cached high
 * watermarks as the stage thread does (rs_cs_hwm_locked).  1 if the
 * lookup should look again (merged something, or something was pushed
 * while mu was released), 0 to sleep.  Called with mu held.
 * @locality the scoring thread */
static int rs_cs_step_waiting(rs_cpstage_t *cs) {
    int n = rs_cpm_step(cs->m, cs->seen_ms, RS_CS_CHUNK);
    if (!n) {
        rs_cpm_stats_t ms;
        rs_cpm_stats(cs->m, &ms);
        if (ms.blocked_topic < 0) return 0;
        int bt = ms.blocked_topic;
        int32_t bp = ms.blocked_part;
        int64_t end0 = rs_cpm_end_off(cs->m, bt, bp);
        if (!rs_cs_hwm_locked(cs, bt, bp)) {
            /* mu was released: look again if something was pushed there */
            if (rs_cpm_end_off(cs->m, bt, bp) != end0) return 1;
            /* starved: the merge waits for a partition the stage paused
             * for the feed, and the feed reads nothing until this thread
             * takes the read-ahead's full buffer, which it does once this
             * lookup is over: the stage's consumer fetches it again */
            if (cs->fed[bt][bp] && cs->ing && rs_ingest_ra_full(cs->ing)) {
                cs->fed[bt][bp] = 0;
                cs->feed_starved++;
                /* the stage thread resumes it now, not after its poll */
                if (cs->rkq) rd_kafka_queue_yield(cs->rkq);
            }
            return 0;
        }
        n = rs_cpm_step(cs->m, cs->seen_ms, RS_CS_CHUNK);
        if (!n) return 1;
    }
    cs->merged_waiting += (uint64_t)n;
    pthread_cond_broadcast(&cs->cv);
    return 1;
}

static rs_err_t rs_cs_fill(rs_cpstage_t *cs, int32_t partition,
                           int64_t offset, const rs_event_t *ev, float *x,
                           const volatile sig_atomic_t *stop, int replay) {
    uint64_t idh = rs_hash_str(ev->id);
    /* The wait is timed from the first thing that makes the lookup wait
     * (the lock held by the stage thread, or its result not there yet):
     * a lookup that waits for neither reads no clock and records 0 (two
     * reads per event before, on the scoring thread). */
    int64_t t0 = 0, deadline = 0;
    rs_err_t err = RS_ERR_AGAIN;
    if (pthread_mutex_trylock(&cs->mu) != 0) {
        t0 = rs_clock_mono_us();
        pthread_mutex_lock(&cs->mu);
    }
    cs->waiting++;
    for (;;) {
        if (cs->m) err = rs_cpm_find(cs->m, partition, offset, idh, x);
        if (err != RS_ERR_AGAIN) break;
        int64_t now = rs_clock_mono_us();
        if (!t0) t0 = now;
        if (!deadline) deadline = t0 + cs->conf.wait_ms * 1000;
        /* no bound until the store has read the topics once */
        if (!cs->caught_up && cs->m && rs_cpm_caught_up(cs->m))
            cs->caught_up = 1;
        if (!cs->caught_up) deadline = now + cs->conf.wait_ms * 1000;
        if (now >= deadline || atomic_load(&cs->stop) || (stop && *stop)) {
            err = RS_ERR_TIMEOUT;
            break;
        }
        /* Merge it here rather than sleep until the stage thread does:
         * its input may be pushed already (the stage thread between two
         * chunks, or descheduled), or the merge may wait only for a
         * partition whose cached watermark shows it at its end. */
        if (cs->m && rs_cs_step_waiting(cs)) continue;
        int64_t until = RS_MIN(deadline, now + 100000);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&cs->cv, &cs->mu, &ts);
    }
    cs->waiting--;
    /* what the read-ahead handed over is looked up in offset order per
     * partition: below this one, nothing is needed any more (rs_cs_trim) */
    if (partition >= 0 && partition < RS_CS_MAX_PARTS &&
        cs->keep[partition] >= 0 && offset >= cs->keep[partition])
        cs->keep[partition] = offset + 1;
    int64_t now = t0 || err != RS_OK ? rs_clock_mono_us() : 0;
    rs_hist_record(&cs->wait_us, t0 ? now - t0 : 0);
    if (err == RS_OK) {
        cs->filled++;
        /* a held replay position is let go once the replay is over */
        if (partition >= 0 && partition < RS_CS_MAX_PARTS &&
            cs->hold[partition] >= 0 && cs->committed[partition] >= 0 &&
            offset >= cs->committed[partition])
            cs->hold[partition] = -1;
    } else {
        if (replay && err != RS_ERR_TIMEOUT) cs->replay_missing++;
        else if (err == RS_ERR_TIMEOUT) cs->miss_timeout++;
        else cs->miss_gone++;
        for (int k = 0; k < cs->nsh; k++) x[cs->sh[k]] = 0.0f;
    }
    int warn = err != RS_OK && !(replay && err != RS_ERR_TIMEOUT) &&
               now >= cs->next_warn_us;
    uint64_t misses = cs->miss_timeout + cs->miss_gone;
    if (warn) cs->next_warn_us = now + 10000000;
    pthread_mutex_unlock(&cs->mu);
    if (warn)
        rs_warn("cpstage", "event %s (partition %d, offset %lld) scored "
                "without its counterparty features: %s (%llu such events "
                "so far)", ev->id, (int)partition, (long long)offset,
                err == RS_ERR_TIMEOUT ? "the store did not reach it within "
                                        "cpstage.wait"
                                      : "the store has no result for it",
                (unsigned long long)misses);
    return err;
}

rs_err_t rs_cpstage_fill(rs_cpstage_t *cs, int32_t partition, int64_t offset,
                         const rs_event_t *ev, float *x,
                         const volatile sig_atomic_t *stop) {
    return rs_cs_fill(cs, partition, offset, ev, x, stop, 0);
}

rs_err_t rs_cpstage_fill_replay(rs_cpstage_t *cs, int32_t partition,
                                int64_t offset, const rs_event_t *ev,
                                float *x, const volatile sig_atomic_t *stop) {
    return rs_cs_fill(cs, partition, offset, ev, x, stop, 1);
}

void rs_cpstage_hold(rs_cpstage_t *cs, const rs_ingest_pos_t *pos, int n) {
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; i < n; i++)
        if (pos[i].topic == RS_MSG_TOPIC_EVENTS && pos[i].partition >= 0 &&
            pos[i].partition < RS_CS_MAX_PARTS)
            cs->hold[pos[i].partition] = pos[i].offset;
    pthread_mutex_unlock(&cs->mu);
}

int rs_cpstage_ready(rs_cpstage_t *cs, const char **why) {
    pthread_mutex_lock(&cs->mu);
    int ok = cs->m && rs_cpm_caught_up(cs->m);
    const char *w = ok       ? NULL
                    : !cs->m ? "counterparty store: waiting for the topics"
                             : "counterparty store: reading the topics";
    pthread_mutex_unlock(&cs->mu);
    if (why) *why = w;
    return ok;
}

void rs_cpstage_stats(rs_cpstage_t *cs, rs_cpstage_stats_t *st) {
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&cs->mu);
    if (cs->m) {
        rs_cpm_stats_t ms;
        rs_cpm_stats(cs->m, &ms);
        rs_features_stats_t fs;
        rs_cpm_store_stats(cs->m, &fs);
        st->events = ms.events;
        st->labels = ms.labels;
        st->rejected = ms.rejected;
        st->duplicates = ms.duplicates;
        st->reordered = ms.reordered;
        st->ends_eof = ms.ends_eof;
        st->ends_hwm = ms.ends_hwm;
        st->held = ms.held;
        st->buffered = ms.buffered;
        st->frontier_ms = ms.frontier_ms == INT64_MIN ? 0 : ms.frontier_ms;
        st->cp_keys = fs.cp_keys;
        st->caught_up = rs_cpm_caught_up(cs->m);
        for (int k = 0; k < 2; k++) {
            st->in_pushed[k] = ms.src_pushed[k];
            st->in_dup[k] = ms.src_dup[k];
            st->in_ahead[k] = ms.src_gap[k];
        }
    }
    st->filled = cs->filled;
    st->miss_timeout = cs->miss_timeout;
    st->miss_gone = cs->miss_gone;
    st->replay_missing = cs->replay_missing;
    st->pauses = cs->pauses;
    st->merged_waiting = cs->merged_waiting;
    st->trims = cs->trims;
    st->feed = cs->ing != NULL;
    st->feed_pauses = cs->feed_pauses;
    st->feed_moved = cs->feed_moved;
    st->feed_late = cs->feed_late;
    st->feed_starved = cs->feed_starved;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < cs->nparts[t]; i++)
            st->feed_paused += cs->fed[t][i] && cs->paused[t][i];
    st->cpu_s = cs->cpu_s;
    st->fetch_wait_ms = cs->fetch_wait_ms;
    st->nparts[0] = cs->nparts[0];
    st->nparts[1] = cs->nparts[1];
    memcpy(&st->wait_us, &cs->wait_us, sizeof(st->wait_us));
    pthread_mutex_unlock(&cs->mu);
}

static void rs_cs_prom(rs_http_buf_t *b, const char *name, const char *type,
                       const char *help, double v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help,
                       name, type, name, v);
}

void rs_cpstage_prometheus(rs_cpstage_t *cs, rs_http_buf_t *b) {
    rs_cpstage_stats_t *st = rs_malloc(sizeof(*st));
    rs_cpstage_stats(cs, st);
    rs_cs_prom(b, "riskstream_cpstage_events_total", "counter",
               "events merged into the counterparty store (every partition)",
               (double)st->events);
    rs_cs_prom(b, "riskstream_cpstage_labels_total", "counter",
               "labels merged into the counterparty store", (double)st->labels);
    rs_cs_prom(b, "riskstream_cpstage_reordered_total", "counter",
               "messages merged out of the canonical order: each one merged "
               "after a message of another partition that the order (by "
               "time, a partition's messages in its own order) puts after "
               "it -- it arrived on a partition the merge had passed as "
               "idle; every one of a late batch",
               (double)st->reordered);
    rs_http_buf_printf(
        b, "# HELP riskstream_cpstage_misses_total events scored without "
           "their counterparty features\n# TYPE riskstream_cpstage_misses_total "
           "counter\nriskstream_cpstage_misses_total{reason=\"timeout\"} %llu\n"
           "riskstream_cpstage_misses_total{reason=\"gone\"} %llu\n",
        (unsigned long long)st->miss_timeout,
        (unsigned long long)st->miss_gone);
    rs_http_buf_printf(
        b, "# HELP riskstream_cpstage_partition_ends_total times the stage "
           "found an input partition at its end (every message read): by the "
           "consumer's PARTITION_EOF, or sooner by its cached high watermark\n"
           "# TYPE riskstream_cpstage_partition_ends_total counter\n"
           "riskstream_cpstage_partition_ends_total{by=\"eof\"} %llu\n"
           "riskstream_cpstage_partition_ends_total{by=\"watermark\"} %llu\n",
        (unsigned long long)st->ends_eof, (unsigned long long)st->ends_hwm);
    rs_http_buf_printf(
        b, "# HELP riskstream_cpstage_input_total messages given to the "
           "counterparty store by each reader (the stage's own consumer; the "
           "feed: the scoring consumer's read-ahead, owned partitions): "
           "pushed, or released as read by the other reader first "
           "(duplicate) or ahead of what was pushed (ahead)\n"
           "# TYPE riskstream_cpstage_input_total counter\n");
    static const char *const src_nm[2] = {"stage", "feed"};
    for (int k = 0; k < 2; k++)
        rs_http_buf_printf(
            b, "riskstream_cpstage_input_total{source=\"%s\",result=\"pushed\"} "
               "%llu\nriskstream_cpstage_input_total{source=\"%s\",result="
               "\"duplicate\"} %llu\nriskstream_cpstage_input_total{source="
               "\"%s\",result=\"ahead\"} %llu\n",
            src_nm[k], (unsigned long long)st->in_pushed[k], src_nm[k],
            (unsigned long long)st->in_dup[k], src_nm[k],
            (unsigned long long)st->in_ahead[k]);
    rs_cs_prom(b, "riskstream_cpstage_feed_paused", "gauge",
               "partitions the stage's consumer does not fetch because the "
               "feed (the scoring consumer's read-ahead) supplies them",
               (double)st->feed_paused);
    rs_http_buf_printf(
        b, "# HELP riskstream_cpstage_feed_resumes_total partitions the "
           "stage's consumer fetches again after a pause for the feed: its "
           "gen moved (rebalance, seek, pause of the scoring consumer), a "
           "lookup waited with the read-ahead full, or the feed was still "
           "for 1 s with data to read\n"
           "# TYPE riskstream_cpstage_feed_resumes_total counter\n"
           "riskstream_cpstage_feed_resumes_total{reason=\"moved\"} %llu\n"
           "riskstream_cpstage_feed_resumes_total{reason=\"starved\"} %llu\n"
           "riskstream_cpstage_feed_resumes_total{reason=\"late\"} %llu\n",
        (unsigned long long)st->feed_moved,
        (unsigned long long)st->feed_starved,
        (unsigned long long)st->feed_late);
    rs_cs_prom(b, "riskstream_cpstage_merged_waiting_total", "counter",
               "messages the scoring thread merged into the counterparty "
               "store itself while it waited for an event's result (the rest "
               "are merged by the stage's thread)",
               (double)st->merged_waiting);
    rs_cs_prom(b, "riskstream_cpstage_replay_missing_total", "counter",
               "events replayed to rebuild a partition's state whose "
               "counterparty result was already dropped (not published; "
               "their shared features are 0 in the rebuilt history)",
               (double)st->replay_missing);
    rs_cs_prom(b, "riskstream_cpstage_pending", "gauge",
               "results kept for events not committed yet", (double)st->held);
    rs_cs_prom(b, "riskstream_cpstage_keys", "gauge",
               "live keys in the counterparty store", (double)st->cp_keys);
    rs_cs_prom(b, "riskstream_cpstage_frontier_seconds", "gauge",
               "time of the newest message merged (event or label time)",
               (double)st->frontier_ms / 1e3);
    rs_cs_prom(b, "riskstream_cpstage_cpu_seconds_total", "counter",
               "CPU time of the counterparty stage's thread", st->cpu_s);
    static const double le_s[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                  0.1, 0.5, 1, 5, 30};
    const char *nm = "riskstream_cpstage_wait_seconds";
    rs_http_buf_printf(b, "# HELP %s time an event waited for its "
                       "counterparty features\n# TYPE %s histogram\n", nm, nm);
    for (size_t i = 0; i < RS_ARRAY_LEN(le_s); i++)
        rs_http_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", nm, le_s[i],
                           (unsigned long long)rs_hist_count_le(
                               &st->wait_us, (int64_t)(le_s[i] * 1e6)));
    rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n"
                       "%s_count %llu\n", nm,
                       (unsigned long long)st->wait_us.total, nm,
                       st->wait_us.sum / 1e6, nm,
                       (unsigned long long)st->wait_us.total);
    free(st);
}
