/* svc_ckpt.c -- the scoring service's checkpoints (design note: scoring.h;
 * shared state: service_int.h).
 *
 * The feature state with the input positions it matches, the learning
 * logs' ends, the duplicate window and, at a graceful stop, the scorer's
 * entity caches: restored at start (rs_svc_ckpt_restore), taken at a batch
 * boundary and written in small steps between batches (rs_svc_ckpt_tick),
 * committed (fsync + rename) off the scoring thread once every batch it
 * covers is delivered, and written whole at shutdown (rs_svc_ckpt_final).
 *
 * Delivered first: a restart starts each partition where the checkpoint's
 * state ends, so the file must never name an offset whose scores are not
 * on Kafka and in Redis (at-least-once: acknowledged and written;
 * exactly-once: their transaction committed).  The state is taken with
 * batches in flight (the ring [ring_tail, ring_head) at that moment);
 * detached, the file waits in memory (ckpt_held) until ring_tail reaches
 * the ring_head of its begin (ckpt_need), then goes to the I/O thread.
 * The scoring thread never flushes the producer for it (it used to, after
 * 1 s without a moment with nothing in flight: 52-163 ms stalls at a
 * steady rate).  Batches that will never be delivered (exactly-once: an
 * aborted transaction) drop a checkpoint that covers them
 * (rs_svc_ckpt_drop); the last committed one stays.
 *
 * Threads: the service thread, except rs_svc_ckpt_io_main (and the
 * rs_svc_logs_sync it calls), which runs on the checkpoint I/O thread
 * while ckpt_io_running; rs_svc_ckpt_join ends it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scoring/service_int.h"

/* The service's blob inside a feature checkpoint: where the restored state
 * ends in each input partition (n positions after the header), then, in a
 * final checkpoint (graceful stop), caches_len bytes of the scorer
 * model's entity caches (rs_model_caches_write), then dedup_len bytes of
 * the duplicate window (rs_dedup_write; every checkpoint).  Host byte
 * order (a local file).  Version 1 had neither caches nor caches_len;
 * version 3 adds the learning logs' ends (nlogs rs_svc_lend_t after the
 * positions, before the caches) and dedup_len.  Version 4 is version 3
 * followed by delimited RECORDS, each u32 tag | u32 len | len bytes (a
 * record of an unknown tag is skipped); written only when a record is
 * (else the blob is version 3, byte for byte as before).  Records:
 *   RS_SVC_REC_MAINT  the maintenance state (alerts.h rs_alerts_ckpt_*:
 *                     the cold-start blend's failure count);
 *   RS_SVC_REC_REH    the trainer's rehearsal state (trainer.h
 *                     rs_trainer_rehearsal: the failures it counted and
 *                     the log positions of their positives), written with
 *                     maintenance.rehearsal only;
 *   RS_SVC_REC_ALERTPOL the alert policy's machine table (alerts.h
 *                     rs_alerts_table_*: open episodes, cool-downs,
 *                     debounce counts), written with maintenance enabled
 *                     (i15alert; an older checkpoint has none: the table
 *                     starts empty, as before);
 *   RS_SVC_REC_MACHINES every machine's partition-local maintenance state
 *                     (alerts.h rs_alerts_part_write(-1): its last reading,
 *                     its input partition, its policy, own-policy and
 *                     CUSUM entries), written with maintenance enabled,
 *                     after RMNT and RMAP and read after them (i15part):
 *                     the machines are tagged by partition again after a
 *                     restart, so they leave with their partition.  An
 *                     older checkpoint has none: the machines restored by
 *                     RMAP/RMNT carry no partition until their next
 *                     reading (they do not leave with one before it). */
#define RS_SVC_CKPT_MAGIC 0x464f5352u /* "RSOF" */
typedef struct rs_svc_ckpt_hdr_s {
    uint32_t magic, version, n, pad;
    char topic[2][128];              /* events, labels topic names       */
    uint64_t caches_len;             /* v2: bytes of caches after pos[n] */
    uint32_t nlogs, pad2;            /* v3: learning-log ends after pos[n] */
    uint64_t dedup_len;              /* v3: bytes of dedup after caches  */
} rs_svc_ckpt_hdr_t;
#define RS_SVC_CKPT_V1_HDR offsetof(rs_svc_ckpt_hdr_t, caches_len)
#define RS_SVC_CKPT_V2_HDR offsetof(rs_svc_ckpt_hdr_t, nlogs)
#define RS_SVC_REC_MAINT 0x544e4d52u /* "RMNT" */
#define RS_SVC_REC_REH 0x48455252u   /* "RREH" */
#define RS_SVC_REC_ALERTPOL 0x50414d52u /* "RMAP" */
#define RS_SVC_REC_MACHINES 0x4d504d52u /* "RMPM" */

/* v3: the end of each open learning log when the state was taken (a
 * restore rewinds the log there: the input after it is read and logged
 * again). */
typedef struct rs_svc_lend_s {
    int32_t partition, pad;
    uint64_t end;
} rs_svc_lend_t;

/* -------------------------------------------------------- checkpoints */

/* The v4 records in blob[off, len) are well delimited (each header and
 * body inside the blob). */
static int rs_svc_ckpt_recs_ok(const void *blob, size_t off, size_t len) {
    while (off < len) {
        uint32_t rl;
        if (len - off < 8) return 0;
        memcpy(&rl, (const char *)blob + off + 4, 4);
        if (rl > len - off - 8) return 0;
        off += 8 + (size_t)rl;
    }
    return 1;
}

/* Restore the feature state and the input positions it matches.  A missing
 * file is a fresh start; a corrupt one is an error (never loaded
 * silently). */
rs_err_t rs_svc_ckpt_restore(rs_service_t *svc, char *errstr,
                             size_t errstr_size) {
    const char *path = svc->ckpt_path;
    char e2[512];
    void *blob = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        rs_info("service", "no checkpoint at %s: starting with empty state",
                path);
        return RS_OK;
    }
    int64_t t0 = rs_clock_mono_us();
    rs_err_t err = rs_features_checkpoint_read(svc->feat, path, &blob, &len,
                                               e2, sizeof(e2));
    if (err != RS_OK)
        return rs_errf(errstr, errstr_size, err,
                       "%s (move it away to start with empty state)", e2);
    const rs_svc_ckpt_hdr_t *h = blob;
    size_t hl = 0, caches_len = 0, nlogs = 0, dedup_len = 0;
    if (blob && len >= RS_SVC_CKPT_V1_HDR && h->magic == RS_SVC_CKPT_MAGIC) {
        if (h->version == 1) hl = RS_SVC_CKPT_V1_HDR;
        if (h->version == 2 && len >= RS_SVC_CKPT_V2_HDR) {
            hl = RS_SVC_CKPT_V2_HDR;
            caches_len = (size_t)h->caches_len;
        }
        if ((h->version == 3 || h->version == 4) && len >= sizeof(*h) &&
            h->caches_len <= len && h->dedup_len <= len) {
            hl = sizeof(*h);
            caches_len = (size_t)h->caches_len;
            dedup_len = (size_t)h->dedup_len;
            nlogs = h->nlogs;
        }
    }
    /* v4: the delimited records after the dedup window (rec_off..len) */
    size_t rec_off = hl ? hl + (size_t)h->n * sizeof(rs_ingest_pos_t) +
                              nlogs * sizeof(rs_svc_lend_t) + caches_len +
                              dedup_len
                        : 0;
    if (!hl || h->n > (len - hl) / sizeof(rs_ingest_pos_t) ||
        nlogs > RS_STATE_MAX_PARTS ||
        (h->version == 4 ? len < rec_off || !rs_svc_ckpt_recs_ok(blob, rec_off, len)
                         : len != rec_off)) {
        free(blob);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "checkpoint %s: its offsets record is missing or "
                       "malformed", path);
    }
    const char *topics[2] = {svc->app->ingest.topic_events,
                             svc->app->ingest.topic_labels};
    if (strncmp(h->topic[0], topics[0], 127) ||
        strncmp(h->topic[1], topics[1], 127)) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "checkpoint %s was taken on topics '%.127s'/'%.127s', not "
                "'%s'/'%s'", path, h->topic[0], h->topic[1], topics[0],
                topics[1]);
        free(blob);
        return RS_ERR_CONFIG;
    }
    const rs_ingest_pos_t *pos =
        (const rs_ingest_pos_t *)((const char *)blob + hl);
    const rs_svc_lend_t *lends = (const rs_svc_lend_t *)(pos + h->n);
    /* the learning logs as they were: opened, rewound, handed to the
     * trainer (maturity goes on even if no event comes for them) */
    for (size_t i = 0; i < nlogs; i++) {
        int32_t p = lends[i].partition;
        if (p < 0 || p >= RS_STATE_MAX_PARTS) continue;
        svc->lrestore[p] = (int64_t)lends[i].end;
        if (!rs_svc_log(svc, p, e2, sizeof(e2))) {
            free(blob);
            return rs_errf(errstr, errstr_size, RS_ERR_IO,
                           "checkpoint %s: learning log of partition %d: %s",
                           path, (int)p, e2);
        }
    }
    if (caches_len) {
        /* The scorer's entity caches, written with the state at a graceful
         * stop: sequence-model history survives the restart. */
        char e2c[256];
        rs_err_t cerr = rs_model_caches_read(
            svc->model, (const char *)(lends + nlogs), caches_len, e2c,
            sizeof(e2c));
        /* Not usable (e.g. seq: sizes changed since): the feature state
         * still is; the model starts without history. */
        if (cerr != RS_OK)
            rs_warn("service", "checkpoint %s: entity caches not restored "
                    "(%s): the sequence model starts without history",
                    path, e2c);
    }
    if (dedup_len && svc->dedup) {
        /* The duplicate window, consistent with the restored state. */
        char e2d[256];
        if (rs_dedup_read(svc->dedup, (const char *)(lends + nlogs) + caches_len,
                          dedup_len, e2d, sizeof(e2d)) != RS_OK)
            rs_warn("service", "checkpoint %s: duplicate window not "
                    "restored (%s): it starts empty", path, e2d);
    }
    /* v4 records (svc_ckpt hook: the maintenance state, i15) */
    for (size_t off = rec_off; h->version == 4 && off < len;) {
        uint32_t tag, rl;
        memcpy(&tag, (const char *)blob + off, 4);
        memcpy(&rl, (const char *)blob + off + 4, 4);
        const char *body = (const char *)blob + off + 8;
        off += 8 + (size_t)rl;
        char e2m[256];
        if (tag == RS_SVC_REC_MAINT && svc->al &&
            rs_alerts_ckpt_read(svc->al, body, rl, e2m, sizeof(e2m)) != RS_OK)
            rs_warn("service", "checkpoint %s: maintenance state not "
                    "restored (%s): the cold start counts failures from 0",
                    path, e2m);
        if (tag == RS_SVC_REC_ALERTPOL && svc->al &&
            rs_alerts_table_read(svc->al, body, rl, e2m, sizeof(e2m)) != RS_OK)
            rs_warn("service", "checkpoint %s: alert policy table not "
                    "restored (%s): every machine starts without an open "
                    "episode (it may be alerted again)", path, e2m);
        uint64_t nm = 0;
        if (tag == RS_SVC_REC_MACHINES && svc->al &&
            rs_alerts_part_merge(svc->al, -1, body, rl, &nm, e2m,
                                 sizeof(e2m)) != RS_OK)
            rs_warn("service", "checkpoint %s: maintenance machines not "
                    "restored (%s): the policy table (RMAP) is used, its "
                    "machines without a partition until they read again",
                    path, e2m);
        /* the trainer loads it in queue order, after the ATTACHes above;
         * positions past the logs' restored ends (the checkpoint's, or
         * less if a log lost records) are dropped */
        if (tag == RS_SVC_REC_REH && svc->tr) {
            int64_t *ends = rs_malloc(RS_STATE_MAX_PARTS * sizeof(*ends));
            for (int32_t p = 0; p < RS_STATE_MAX_PARTS; p++) {
                const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
                ends[p] = lg ? (int64_t)rs_learnlog_end(lg) : -1;
            }
            rs_trainer_rehearsal_restore(svc->tr, body, rl, ends,
                                         RS_STATE_MAX_PARTS);
            free(ends);
        }
    }
    for (uint32_t i = 0; i < h->n; i++)
        if (pos[i].topic >= 0 && pos[i].topic < 2 && pos[i].partition >= 0 &&
            pos[i].partition < RS_SVC_MAX_PARTS)
            svc->applied[pos[i].topic * RS_SVC_MAX_PARTS + pos[i].partition] =
                pos[i].offset;
    /* The partitions it holds start where it ends if they are assigned
     * here (parts.h); the others are saved and dropped. */
    for (uint32_t i = 0; i < h->n; i++)
        rs_parts_held(svc->parts, pos[i].partition);
    if (svc->cp) rs_cpstage_hold(svc->cp, pos, (int)h->n); /* cpstage hook */
    rs_features_stats_t fs;
    rs_features_stats(svc->feat, &fs);
    rs_model_stats_t ms;
    rs_model_stats(svc->model, &ms);
    rs_info("service", "checkpoint %s restored in %.0f ms: %llu entity and "
            "%llu counterparty keys, %llu model entity caches, %u input "
            "positions", path, (rs_clock_mono_us() - t0) / 1000.0,
            (unsigned long long)fs.entity_keys, (unsigned long long)fs.cp_keys,
            (unsigned long long)ms.entities, h->n);
    free(blob);
    return RS_OK;
}

/* The service record of a checkpoint: the input positions, if `caches`
 * the scorer's entity caches, and the duplicate window.  Built in
 * svc->ckpt_buf (owned by the service, valid until the next call): reused
 * so that a checkpoint does not fault in fresh pages for megabytes of
 * duplicate window each time (measured: ~40 ms at 127 000 entries). */
static void *rs_svc_ckpt_blob(rs_service_t *svc, int caches, size_t *len) {
    uint32_t n = 0;
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS; i++) n += svc->applied[i] >= 0;
    uint32_t nlogs = 0;
    for (int32_t p = 0; p < RS_STATE_MAX_PARTS; p++)
        nlogs += rs_state_log_if_open(svc->state, p) != NULL;
    size_t clen = caches ? rs_model_caches_size(svc->model) : 0;
    size_t dlen = svc->dedup ? rs_dedup_size(svc->dedup) : 0;
    /* v4 records (svc_ckpt hook: the maintenance state, i15) */
    size_t mlen = svc->al ? rs_alerts_ckpt_size(svc->al) : 0;
    /* the trainer's rehearsal state (i15w; 0 bytes with rehearsal off) */
    size_t hlen = svc->tr ? rs_trainer_rehearsal(svc->tr, svc->reh_buf,
                                                 svc->reh_buf_cap, NULL)
                          : 0;
    while (hlen > svc->reh_buf_cap) { /* grew: copy into a larger buffer */
        free(svc->reh_buf);
        svc->reh_buf_cap = hlen + 64 * 8;
        svc->reh_buf = rs_malloc(svc->reh_buf_cap);
        hlen = rs_trainer_rehearsal(svc->tr, svc->reh_buf, svc->reh_buf_cap,
                                    NULL);
    }
    /* the alert policy's machine table (i15alert) */
    size_t plen = svc->al ? rs_alerts_table_size(svc->al) : 0;
    if (plen > UINT32_MAX - 8) { /* a record's length is a u32 */
        rs_warn("service", "alert policy table of %zu bytes not "
                "checkpointed (records hold at most 4 GiB)", plen);
        plen = 0;
    }
    /* every machine's partition-local state (i15part) */
    size_t qlen = svc->al ? rs_alerts_part_write(svc->al, -1, NULL, 0) : 0;
    if (qlen > UINT32_MAX - 8) {
        rs_warn("service", "maintenance machines of %zu bytes not "
                "checkpointed (records hold at most 4 GiB)", qlen);
        qlen = 0;
    }
    size_t rlen = (mlen ? 8 + mlen : 0) + (hlen ? 8 + hlen : 0) +
                  (plen ? 8 + plen : 0) + (qlen ? 8 + qlen : 0);
    size_t base = sizeof(rs_svc_ckpt_hdr_t) +
                  (size_t)n * sizeof(rs_ingest_pos_t) +
                  (size_t)nlogs * sizeof(rs_svc_lend_t);
    if (base + clen + dlen + rlen > svc->ckpt_buf_cap) {
        free(svc->ckpt_buf);
        svc->ckpt_buf_cap = base + clen + dlen + rlen;
        svc->ckpt_buf = rs_malloc(svc->ckpt_buf_cap);
    }
    rs_svc_ckpt_hdr_t *h = svc->ckpt_buf;
    memset(h, 0, base);
    *len = base; /* grows by what is written after the log ends */
    h->magic = RS_SVC_CKPT_MAGIC;
    h->version = 3;
    h->n = n;
    h->nlogs = nlogs;
    if (clen) {
        size_t got = 0;
        if (rs_model_caches_write(svc->model, (char *)h + base, clen, &got) !=
            RS_OK) {
            rs_warn("service", "entity caches not written to the checkpoint");
            got = 0;
        }
        h->caches_len = got;
        *len = base + got;
    }
    if (dlen) {
        size_t got = 0;
        if (rs_dedup_write(svc->dedup, (char *)h + *len, dlen, &got) != RS_OK)
            got = 0;
        h->dedup_len = got;
        *len += got;
    }
    if (mlen) { /* v4: the records after the dedup window */
        char *r = (char *)h + *len;
        uint32_t hd[2] = {RS_SVC_REC_MAINT, (uint32_t)mlen};
        memcpy(r, hd, 8);
        rs_alerts_ckpt_write(svc->al, r + 8);
        h->version = 4;
        *len += 8 + mlen;
    }
    if (hlen) {
        char *r = (char *)h + *len;
        uint32_t hd[2] = {RS_SVC_REC_REH, (uint32_t)hlen};
        memcpy(r, hd, 8);
        memcpy(r + 8, svc->reh_buf, hlen);
        h->version = 4;
        *len += 8 + hlen;
    }
    if (plen) {
        char *r = (char *)h + *len;
        uint32_t hd[2] = {RS_SVC_REC_ALERTPOL, (uint32_t)plen};
        memcpy(r, hd, 8);
        rs_alerts_table_write(svc->al, r + 8);
        h->version = 4;
        *len += 8 + plen;
    }
    if (qlen) {
        char *r = (char *)h + *len;
        uint32_t hd[2] = {RS_SVC_REC_MACHINES, (uint32_t)qlen};
        memcpy(r, hd, 8);
        rs_alerts_part_write(svc->al, -1, r + 8, qlen);
        h->version = 4;
        *len += 8 + qlen;
    }
    rs_strlcpy(h->topic[0], svc->app->ingest.topic_events, sizeof(h->topic[0]));
    rs_strlcpy(h->topic[1], svc->app->ingest.topic_labels, sizeof(h->topic[1]));
    rs_ingest_pos_t *pos = (rs_ingest_pos_t *)(h + 1);
    for (int i = 0, k = 0; i < 2 * RS_SVC_MAX_PARTS; i++)
        if (svc->applied[i] >= 0)
            pos[k++] = (rs_ingest_pos_t){i / RS_SVC_MAX_PARTS,
                                         i % RS_SVC_MAX_PARTS,
                                         svc->applied[i]};
    rs_svc_lend_t *lends = (rs_svc_lend_t *)(pos + n);
    for (int32_t p = 0, k = 0; p < RS_STATE_MAX_PARTS; p++) {
        const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
        if (lg) lends[k++] = (rs_svc_lend_t){p, 0, rs_learnlog_end(lg)};
    }
    return h;
}

/* The logs a checkpoint names, for the I/O thread (service thread). */
static void rs_svc_logs_collect(rs_service_t *svc) {
    svc->ckpt_nlogs = 0;
    for (int32_t p = 0; p < RS_STATE_MAX_PARTS; p++) {
        rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
        if (lg) svc->ckpt_logs[svc->ckpt_nlogs++] = lg;
    }
}

/* The learning logs on disk up to what a checkpoint names, before the
 * checkpoint is committed (msync only: any thread; the logs stay open
 * while a checkpoint is in flight). */
static void rs_svc_logs_sync(rs_service_t *svc) {
    char e2[512];
    for (int i = 0; i < svc->ckpt_nlogs; i++)
        if (rs_learnlog_sync(svc->ckpt_logs[i], e2, sizeof(e2)) != RS_OK)
            rs_error("service", "%s", e2);
}

/* Checkpoint I/O thread: fsync + rename, off the scoring thread. */
static void *rs_svc_ckpt_io_main(void *arg) {
    rs_service_t *svc = arg;
    char e2[512];
    rs_svc_logs_sync(svc);
    if (rs_features_ckfile_commit(svc->ckpt_cf, e2, sizeof(e2)) != RS_OK) {
        rs_error("service", "checkpoint commit: %s", e2);
        atomic_store(&svc->ckpt_io_err, 1);
    }
    svc->ckpt_cf = NULL;
    atomic_store(&svc->ckpt_io_done_us, rs_clock_mono_us());
    return NULL;
}

/* Hand the detached checkpoint (its batches delivered) to the I/O
 * thread. */
static void rs_svc_ckpt_io_start(rs_service_t *svc) {
    svc->ckpt_held = 0;
    atomic_store(&svc->ckpt_io_done_us, 0);
    rs_svc_logs_collect(svc);
    if (pthread_create(&svc->ckpt_io, NULL, rs_svc_ckpt_io_main, svc)) {
        rs_svc_ckpt_io_main(svc); /* no thread: commit here */
        svc->ckpt_io_running = 1;
        rs_svc_ckpt_join(svc);
        return;
    }
    svc->ckpt_io_running = 1;
}

void rs_svc_ckpt_settle(rs_service_t *svc, int wait) {
    if (svc->ckpt_held) {
        if (svc->ring_tail >= svc->ckpt_need) {
            rs_svc_ckpt_io_start(svc);
        } else {
            rs_info("service", "checkpoint dropped: %llu of its batches "
                    "not delivered (the last one stays)",
                    (unsigned long long)(svc->ckpt_need - svc->ring_tail));
            rs_features_ckfile_discard(svc->ckpt_cf);
            svc->ckpt_cf = NULL;
            svc->ckpt_held = 0;
            svc->ckpt_due_us = rs_clock_mono_us(); /* again, soon */
        }
    }
    if (wait) rs_svc_ckpt_join(svc);
}

void rs_svc_ckpt_drop(rs_service_t *svc) {
    if (svc->ckpt_active && svc->ckpt_need > svc->ring_tail) {
        rs_features_checkpoint_abort(svc->feat);
        svc->ckpt_active = 0;
        svc->ckpt_due_us = rs_clock_mono_us();
    }
    rs_svc_ckpt_settle(svc, 0);
}

void rs_svc_ckpt_join(rs_service_t *svc) {
    if (!svc->ckpt_io_running) return;
    pthread_join(svc->ckpt_io, NULL);
    svc->ckpt_io_running = 0;
    if (atomic_exchange(&svc->ckpt_io_err, 0)) {
        svc->st.checkpoint_errors++;
    } else {
        svc->st.checkpoints++;
        svc->st.checkpoint_last_ms =
            (atomic_load(&svc->ckpt_io_done_us) - svc->ckpt_begin_us) / 1000;
    }
}

/* One checkpoint step between batches: begin when due (the state and
 * the offsets of every batch so far, delivered or not), then serialize
 * `checkpoint_step` keys per call, then detach; the file goes to the I/O
 * thread once those batches are delivered (the design note). */
void rs_svc_ckpt_tick(rs_service_t *svc, int64_t now_us) {
    char e2[512];
    if (!svc->ckpt_path[0]) return;
    if (svc->ckpt_held) {
        if (svc->ring_tail >= svc->ckpt_need) rs_svc_ckpt_io_start(svc);
        return;
    }
    if (!svc->ckpt_active) {
        if (now_us < svc->ckpt_due_us) return;
        /* The trainer's rehearsal state must hold the failures read
         * before these positions (they are not read again after a
         * restart): wait for the trainer to resolve those in its queue;
         * past 1 s, take the state as it is (counted). */
        int cur = 1;
        if (svc->tr) rs_trainer_rehearsal(svc->tr, NULL, 0, &cur);
        if (!cur) {
            if (now_us - svc->ckpt_due_us < 1000000) return;
            svc->st.checkpoint_reh_behind++;
        }
        if (svc->ckpt_io_running) {
            /* previous commit still fsyncing: check again later */
            if (!atomic_load(&svc->ckpt_io_done_us)) return;
            rs_svc_ckpt_join(svc);
        }
        size_t len;
        int64_t tb = rs_clock_mono_us();
        void *blob = rs_svc_ckpt_blob(svc, 0, &len);
        rs_err_t err = rs_features_checkpoint_begin(
            svc->feat, svc->ckpt_path, blob, len, e2, sizeof(e2));
        /* The begin is a pause too (the service record, with the duplicate
         * window, is copied whole): counted with the steps. */
        if (rs_clock_mono_us() - tb > svc->st.checkpoint_step_max_us)
            svc->st.checkpoint_step_max_us = rs_clock_mono_us() - tb;
        svc->ckpt_due_us = now_us + svc->conf->checkpoint_interval_ms * 1000;
        if (err != RS_OK) {
            rs_error("service", "checkpoint begin: %s", e2);
            svc->st.checkpoint_errors++;
            return;
        }
        svc->ckpt_active = 1;
        svc->ckpt_begin_us = now_us;
        svc->ckpt_need = svc->ring_head; /* every batch of this state */
        return;
    }
    /* Steps while the next one, estimated by the last one's time, still
     * ends within the pause budget: scoring waits about checkpoint_pause
     * between two batches, not that plus one more step (a step of
     * checkpoint_step slots took 2-5 ms on a loaded 2-core box, over the
     * 2 ms default: 4.8 ms pauses).  The step shrinks (halved, down to 16
     * slots) while one takes more than half the budget and grows back
     * (doubled, up to checkpoint_step) while one takes under an eighth, so
     * a single step stays within the budget too.  At least one step per
     * turn: the checkpoint always progresses. */
    int64_t budget = svc->conf->checkpoint_pause_ms * 1000;
    size_t smax = (size_t)svc->conf->checkpoint_step;
    if (!svc->ckpt_step_n || svc->ckpt_step_n > smax) svc->ckpt_step_n = smax;
    int64_t t0 = rs_clock_mono_us(), t = t0;
    rs_err_t err;
    do {
        int64_t ts = t;
        err = rs_features_checkpoint_step(svc->feat, svc->ckpt_step_n);
        t = rs_clock_mono_us();
        svc->ckpt_step_us = t - ts;
        if (2 * svc->ckpt_step_us > budget && svc->ckpt_step_n > 16)
            svc->ckpt_step_n = RS_MAX(svc->ckpt_step_n / 2, (size_t)16);
        else if (8 * svc->ckpt_step_us < budget && svc->ckpt_step_n < smax)
            svc->ckpt_step_n = RS_MIN(svc->ckpt_step_n * 2, smax);
    } while (err == RS_ERR_AGAIN && t - t0 + svc->ckpt_step_us <= budget);
    if (t - t0 > svc->st.checkpoint_step_max_us)
        svc->st.checkpoint_step_max_us = t - t0;
    if (err == RS_ERR_AGAIN) return;
    svc->ckpt_active = 0;
    if (err == RS_OK)
        err = rs_features_checkpoint_detach(svc->feat, &svc->ckpt_cf, e2,
                                            sizeof(e2));
    else
        snprintf(e2, sizeof(e2), "%s", rs_err_str(err));
    if (err != RS_OK) {
        rs_error("service", "checkpoint: %s", e2);
        rs_features_checkpoint_abort(svc->feat);
        svc->st.checkpoint_errors++;
        return;
    }
    svc->ckpt_held = 1;
    if (svc->ring_tail >= svc->ckpt_need) rs_svc_ckpt_io_start(svc);
}

/* Shutdown: a complete checkpoint of the final state (after the flush, so
 * every applied offset is delivered too). */
void rs_svc_ckpt_final(rs_service_t *svc) {
    char e2[512];
    if (!svc->ckpt_path[0]) return;
    if (svc->ckpt_active) {
        rs_features_checkpoint_abort(svc->feat);
        svc->ckpt_active = 0;
    }
    if (svc->ckpt_held) { /* superseded by this one */
        rs_features_ckfile_discard(svc->ckpt_cf);
        svc->ckpt_cf = NULL;
        svc->ckpt_held = 0;
    }
    rs_svc_ckpt_join(svc);
    /* the trainer's rehearsal state with every failure read (the trainer
     * learns what is queued before it stops anyway) */
    if (svc->tr && !rs_trainer_rehearsal_wait(svc->tr, 30000)) {
        rs_warn("service", "final checkpoint: the trainer has not resolved "
                "every failure read within 30 s: its rehearsal state lacks "
                "them");
        svc->st.checkpoint_reh_behind++;
    }
    size_t len;
    /* Final: with the scorer's entity caches (consistent with this state:
     * nothing is scored after it). */
    void *blob = rs_svc_ckpt_blob(svc, 1, &len);
    int64_t t0 = rs_clock_mono_us();
    svc->ckpt_begin_us = t0;
    rs_svc_logs_collect(svc);
    rs_svc_logs_sync(svc);
    if (rs_features_checkpoint_write(svc->feat, svc->ckpt_path,
                                     blob, len, e2, sizeof(e2)) != RS_OK) {
        rs_error("service", "final checkpoint: %s", e2);
        svc->st.checkpoint_errors++;
    } else {
        svc->st.checkpoints++;
        svc->st.checkpoint_last_ms = (rs_clock_mono_us() - t0) / 1000;
        rs_info("service", "checkpoint %s written in %lld ms",
                svc->ckpt_path,
                (long long)svc->st.checkpoint_last_ms);
    }
}

