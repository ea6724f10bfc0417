/* parts.c -- partition ownership and the fate of its state (parts.h). */
#include "scoring/parts.h"

#include <stdlib.h>
#include <string.h>

enum { RS_PART_NONE = 0, RS_PART_OWNED, RS_PART_PARKED };

struct rs_parts_s {
    rs_pstate_t *ps;
    rs_parts_ops_t ops;
    uint8_t *st;          /* [RS_PARTS_MAX] RS_PART_*                    */
    int nparked;          /* partitions PARKED                           */
    int assigned_once;    /* an assignment was received (before it, the
                           * partitions held from the checkpoint wait)  */
    rs_label_t *held;     /* [RS_PARTS_HELD] labels waiting for their
                           * event during a replay (ring)               */
    uint64_t *held_id;    /* [RS_PARTS_HELD] rs_hash_str(event id); 0 =
                           * free                                       */
    int32_t *held_part;   /* [RS_PARTS_HELD]                            */
    int nheld, held_next;
    int64_t *cl_off;      /* [RS_PARTS_MAX] changelog offset the state
                           * covers since its restore (-1: none)        */
    /* standby copies (standby.h; NULL: state.standby 0) */
    rs_standby_t *sb;
    int sb_n;             /* state.standby                               */
    uint64_t gen, sb_gen; /* assignment changes seen / placed            */
    int sb_placed;        /* placed once (the first sweep done)          */
    int64_t sb_retry_us;  /* partition count unknown: asked again then  */
    int32_t *sb_owned, *sb_target; /* [RS_PARTS_MAX] scratch            */
    uint8_t *sb_want;     /* [RS_PARTS_MAX]                              */
};

rs_parts_t *rs_parts_new(rs_pstate_t *ps, const rs_parts_ops_t *ops) {
    rs_parts_t *pt = rs_calloc(1, sizeof(*pt));
    pt->ps = ps;
    pt->ops = *ops;
    pt->st = rs_calloc(RS_PARTS_MAX, 1);
    pt->cl_off = rs_calloc(RS_PARTS_MAX, sizeof(*pt->cl_off));
    for (int i = 0; i < RS_PARTS_MAX; i++) pt->cl_off[i] = -1;
    pt->held = rs_calloc(RS_PARTS_HELD, sizeof(*pt->held));
    pt->held_id = rs_calloc(RS_PARTS_HELD, sizeof(*pt->held_id));
    pt->held_part = rs_calloc(RS_PARTS_HELD, sizeof(*pt->held_part));
    return pt;
}

void rs_parts_destroy(rs_parts_t *pt) {
    if (!pt) return;
    free(pt->sb_owned);
    free(pt->sb_target);
    free(pt->sb_want);
    free(pt->st);
    free(pt->cl_off);
    free(pt->held);
    free(pt->held_id);
    free(pt->held_part);
    free(pt);
}

static int rs_parts_ok(int32_t p) { return p >= 0 && p < RS_PARTS_MAX; }

/* standby copies: the end of this file */
static int rs_parts_from_standby(rs_parts_t *pt, int32_t p,
                                 const int64_t committed[2], int64_t start[2]);
static void rs_parts_sb_tick(rs_parts_t *pt);

void rs_parts_held(rs_parts_t *pt, int32_t p) {
    if (!rs_parts_ok(p) || pt->st[p] != RS_PART_NONE) return;
    pt->st[p] = RS_PART_PARKED;
    pt->nparked++;
}

/* Forget partition p here: its state, offsets and learning log. */
static void rs_parts_forget(rs_parts_t *pt, int32_t p, uint64_t *nkeys) {
    pt->ops.ckpt_abort(pt->ops.svc);
    rs_pstate_drop(pt->ps, p, nkeys);
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p, -1);
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p, -1);
    pt->ops.log_close(pt->ops.svc, p);
    pt->cl_off[p] = -1;
    if (pt->st[p] == RS_PART_PARKED) pt->nparked--;
    pt->st[p] = RS_PART_NONE;
}

/* Where partition p's state comes from, restored into RAM: sets
 * starts[0..2) ([topic]) to the offsets it covers, or to
 * RS_INGEST_START_BEGINNING / _COMMITTED. */
static void rs_parts_restore(rs_parts_t *pt, int32_t p,
                             const int64_t committed[2], int64_t start[2]) {
    char e2[512];
    int64_t t0 = rs_clock_mono_us();
    if (pt->st[p] == RS_PART_OWNED || pt->st[p] == RS_PART_PARKED) {
        /* in RAM: it ends where it ends (saved after a flush, or the
         * instance checkpoint's consistent positions) */
        for (int t = 0; t < 2; t++) {
            int64_t a = pt->ops.applied(pt->ops.svc, t, p);
            start[t] = a >= 0 ? a : RS_INGEST_START_COMMITTED;
        }
        /* a partition with state but no position of one topic: its
         * messages so far are in the state only if nothing was committed
         * beyond; else rebuild that topic from the beginning */
        for (int t = 0; t < 2; t++)
            if (start[t] == RS_INGEST_START_COMMITTED && committed[t] > 0)
                start[t] = RS_INGEST_START_BEGINNING;
        if (pt->st[p] == RS_PART_PARKED) pt->nparked--;
        pt->st[p] = RS_PART_OWNED;
        rs_info("state", "partition %d: state kept in memory (events "
                "offset %lld, labels offset %lld)", (int)p,
                (long long)start[0], (long long)start[1]);
        return;
    }
    /* a standby copy here: the changelog tail after it (standby.h) */
    if (pt->sb && rs_parts_from_standby(pt, p, committed, start)) return;
    pt->st[p] = RS_PART_OWNED;
    rs_pstate_restore_begin(pt->ps);
    pt->ops.ckpt_abort(pt->ops.svc);
    rs_pstate_pos_t pos;
    uint64_t nk = 0, nrec = 0;
    char source = 0;
    rs_err_t err = rs_pstate_load(pt->ps, p, &pos, &nk, e2, sizeof(e2));
    if (err == RS_OK) source = 'l';
    else if (err != RS_ERR_NOTFOUND)
        rs_warn("state", "partition %d: local checkpoint not used (%s)",
                (int)p, e2);
    /* The changelog when it holds more than the local checkpoint (or
     * when there is none): applied on top of it, from its offset. */
    int64_t hwm = pt->ops.cl_hwm ? pt->ops.cl_hwm(pt->ops.svc, p) : -1;
    int64_t from = source && pos.changelog >= 0 ? pos.changelog : 0;
    if (hwm > 0 && source && pos.changelog < 0) {
        /* a checkpoint that does not say where it stands in the changelog
         * (written while this instance had not produced to it): the
         * changelog alone if it covers more input, else the checkpoint */
        rs_pstate_pos_t cpos, keep = pos;
        rs_pstate_drop(pt->ps, p, NULL);
        rs_err_t cerr = pt->ops.cl_restore(pt->ops.svc, p, 0, &cpos, &nrec,
                                           e2, sizeof(e2));
        if (cerr == RS_OK && cpos.events >= keep.events) {
            pos = cpos;
            source = 'c';
            nk = 0;
        } else {
            rs_pstate_drop(pt->ps, p, NULL);
            nrec = 0;
            if (rs_pstate_load(pt->ps, p, &pos, &nk, e2, sizeof(e2)) != RS_OK)
                source = 0;
        }
        hwm = -1; /* decided */
    }
    if (hwm > from && (!source || pos.changelog >= 0)) {
        rs_pstate_pos_t cpos;
        rs_err_t cerr = pt->ops.cl_restore(pt->ops.svc, p, from, &cpos, &nrec,
                                           e2, sizeof(e2));
        if (cerr == RS_OK) {
            pos = cpos;
            source = 'c';
            rs_features_stats_t fs;
            (void)fs;
        } else if (cerr != RS_ERR_NOTFOUND) {
            rs_warn("state", "partition %d: changelog not used (%s)%s",
                    (int)p, e2, source ? "; its local checkpoint is dropped "
                                         "too (the two may disagree)" : "");
            rs_pstate_drop(pt->ps, p, NULL);
            source = 0;
        }
    }
    if (source) {
        pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p, pos.events);
        pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p, pos.labels);
        /* the learning log is local: rewound to a local checkpoint's end;
         * a changelog's log end is the writer's (another instance's log),
         * never applied to this one */
        pt->ops.log_restore(pt->ops.svc, p,
                            source == 'l' ? pos.log_end : UINT64_MAX);
        pt->cl_off[p] = pos.changelog;
        int64_t off[2] = {pos.events, pos.labels};
        for (int t = 0; t < 2; t++)
            start[t] = off[t] >= 0 ? off[t]
                       : committed[t] > 0 ? RS_INGEST_START_BEGINNING
                                          : RS_INGEST_START_COMMITTED;
        double s = (double)(rs_clock_mono_us() - t0) / 1e6;
        rs_pstate_restore_end(pt->ps, source, nk + nrec, s);
        rs_info("state", "partition %d: restored from %s in %.0f ms: %llu "
                "entity keys%s, events offset %lld (committed %lld), labels "
                "offset %lld (committed %lld)", (int)p,
                source == 'l' ? "its local checkpoint"
                : nk ? "its local checkpoint and the changelog"
                     : "the changelog",
                s * 1e3, (unsigned long long)nk,
                source == 'c' ? " (checkpoint), changelog records applied"
                              : "",
                (long long)pos.events, (long long)committed[0],
                (long long)pos.labels, (long long)committed[1]);
        return;
    }
    /* No state anywhere: rebuild it from the input itself. */
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p, -1);
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p, -1);
    int any = 0;
    for (int t = 0; t < 2; t++) {
        start[t] = committed[t] == RS_INGEST_OFFSET_NONE
                       ? RS_INGEST_START_COMMITTED
                       : RS_INGEST_START_BEGINNING;
        any |= start[t] == RS_INGEST_START_BEGINNING;
    }
    rs_pstate_restore_end(pt->ps, any ? 'r' : 'm', 0,
                          (double)(rs_clock_mono_us() - t0) / 1e6);
    if (any)
        rs_info("state", "partition %d: no state here (no local checkpoint): "
                "replaying it from the beginning up to the committed offsets "
                "(events %lld, labels %lld): state rebuilt, nothing "
                "published twice", (int)p, (long long)committed[0],
                (long long)committed[1]);
}

void rs_parts_assign(void *opaque, rs_ingest_start_t *parts, int n) {
    rs_parts_t *pt = opaque;
    pt->assigned_once = 1;
    pt->gen++; /* standby placement follows (rs_parts_sb_tick) */
    for (int i = 0; i < n; i++) {
        int32_t p = parts[i].partition;
        if (!rs_parts_ok(p) || parts[i].start != RS_INGEST_START_COMMITTED)
            continue; /* done with its pair, or out of range */
        int64_t committed[2] = {RS_INGEST_OFFSET_NONE, RS_INGEST_OFFSET_NONE};
        for (int j = i; j < n; j++)
            if (parts[j].partition == p && parts[j].topic >= 0 &&
                parts[j].topic < 2)
                committed[parts[j].topic] = parts[j].committed;
        if (pt->st[p] == RS_PART_OWNED) {
            /* cooperative: a second topic of a partition already ours */
            for (int j = i; j < n; j++)
                if (parts[j].partition == p) {
                    int64_t a = pt->ops.applied(pt->ops.svc, parts[j].topic,
                                                p);
                    parts[j].start = a >= 0 ? a
                                     : parts[j].committed > 0
                                         ? RS_INGEST_START_BEGINNING
                                         : RS_INGEST_START_COMMITTED;
                }
            continue;
        }
        int64_t start[2];
        rs_parts_restore(pt, p, committed, start);
        for (int j = i; j < n; j++)
            if (parts[j].partition == p && parts[j].topic >= 0 &&
                parts[j].topic < 2)
                parts[j].start = start[parts[j].topic];
        /* mark the pair done (start may legitimately stay COMMITTED) */
        for (int j = i + 1; j < n; j++)
            if (parts[j].partition == p && parts[j].start ==
                                               RS_INGEST_START_COMMITTED)
                parts[j].start = RS_INGEST_START_COMMITTED - 1;
    }
    for (int i = 0; i < n; i++)
        if (parts[i].start == RS_INGEST_START_COMMITTED - 1)
            parts[i].start = RS_INGEST_START_COMMITTED;
}

void rs_parts_revoke(void *opaque, const rs_ingest_pos_t *parts, int n,
                     int lost) {
    rs_parts_t *pt = opaque;
    pt->gen++; /* standby placement follows (rs_parts_sb_tick) */
    int flushed = !lost && pt->ops.flush(pt->ops.svc) == 0;
    for (int i = 0; i < n; i++) {
        int32_t p = parts[i].partition;
        if (!rs_parts_ok(p) || pt->st[p] != RS_PART_OWNED) continue;
        if (flushed) {
            pt->st[p] = RS_PART_PARKED;
            pt->nparked++;
            continue;
        }
        uint64_t nk = 0;
        rs_parts_forget(pt, p, &nk);
        rs_warn("state", "partition %d %s: its state (%llu entity keys) is "
                "dropped, not saved (it may be ahead of what was "
                "delivered); the new owner rebuilds it", (int)p,
                lost ? "lost" : "revoked without a complete flush",
                (unsigned long long)nk);
    }
}

void rs_parts_tick(rs_parts_t *pt) {
    char e2[512];
    if (pt->sb) rs_parts_sb_tick(pt); /* standby copies: placed, kept warm */
    if (!pt->nparked || !pt->assigned_once ||
        pt->ops.rebalancing(pt->ops.svc))
        return;
    for (int32_t p = 0; p < RS_PARTS_MAX && pt->nparked; p++) {
        if (pt->st[p] != RS_PART_PARKED) continue;
        if (pt->ops.owns(pt->ops.svc, p)) { /* assigned without a callback */
            pt->st[p] = RS_PART_OWNED;
            pt->nparked--;
            continue;
        }
        int64_t t0 = rs_clock_mono_us();
        int64_t ce = pt->ops.cl_end ? pt->ops.cl_end(pt->ops.svc, p) : -1;
        rs_pstate_pos_t pos = {
            pt->ops.applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p),
            pt->ops.applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p),
            pt->ops.log_end(pt->ops.svc, p),
            ce > pt->cl_off[p] ? ce : pt->cl_off[p]};
        pt->ops.ckpt_abort(pt->ops.svc);
        rs_err_t err = rs_pstate_save(pt->ps, p, &pos, e2, sizeof(e2));
        uint64_t nk = 0;
        rs_parts_forget(pt, p, &nk);
        if (err)
            rs_error("state", "partition %d left: its checkpoint could not "
                     "be saved (%s); state dropped (a later owner rebuilds "
                     "it)", (int)p, e2);
        else
            rs_info("state", "partition %d left: %llu entity keys saved to "
                    "its local checkpoint (events offset %lld, labels offset "
                    "%lld) and dropped from memory in %.0f ms", (int)p,
                    (unsigned long long)nk, (long long)pos.events,
                    (long long)pos.labels,
                    (double)(rs_clock_mono_us() - t0) / 1e3);
    }
}

int rs_parts_owned(const rs_parts_t *pt, int32_t *out, int max) {
    int n = 0;
    for (int32_t p = 0; p < RS_PARTS_MAX; p++)
        if (pt->st[p] == RS_PART_OWNED) {
            if (n < max) out[n] = p;
            n++;
        }
    return n;
}

/* ------------------------------------------------------ held labels */

void rs_parts_label_hold(rs_parts_t *pt, const rs_label_t *lb,
                         int32_t partition) {
    int i = pt->held_next;
    pt->held_next = (pt->held_next + 1) % RS_PARTS_HELD;
    if (pt->held_id[i]) {
        rs_warn("state", "more than %d labels wait for their replayed "
                "events: the oldest (event %s) is dropped", RS_PARTS_HELD,
                pt->held[i].event_id);
        pt->nheld--;
    }
    pt->held[i] = *lb;
    pt->held_id[i] = rs_hash_str(lb->event_id) | 1;
    pt->held_part[i] = partition;
    pt->nheld++;
}

int rs_parts_labels_held(const rs_parts_t *pt) { return pt->nheld; }

void rs_parts_label_release(rs_parts_t *pt, rs_features_t *f,
                            const char *event_id) {
    uint64_t id = rs_hash_str(event_id) | 1;
    /* oldest first: the order they were read in */
    for (int k = 0; k < RS_PARTS_HELD && pt->nheld; k++) {
        int i = (pt->held_next + k) % RS_PARTS_HELD;
        if (pt->held_id[i] != id || strcmp(pt->held[i].event_id, event_id))
            continue;
        rs_features_label(f, &pt->held[i]);
        pt->held_id[i] = 0;
        pt->nheld--;
    }
}

int rs_parts_labels_expire(rs_parts_t *pt,
                           int (*replaying)(void *svc, int32_t partition)) {
    int n = 0;
    int32_t cp[16]; /* replaying() of the partitions seen in this pass */
    int cr[16], nc = 0;
    for (int i = 0; i < RS_PARTS_HELD && pt->nheld; i++) {
        if (!pt->held_id[i]) continue;
        int32_t p = pt->held_part[i];
        int r = -1;
        for (int k = 0; k < nc && r < 0; k++)
            if (cp[k] == p) r = cr[k];
        if (r < 0) {
            r = rs_parts_ok(p) && pt->st[p] == RS_PART_OWNED &&
                replaying(pt->ops.svc, p);
            if (nc < 16) {
                cp[nc] = p;
                cr[nc++] = r;
            }
        }
        if (r) continue;
        pt->held_id[i] = 0;
        pt->nheld--;
        n++;
    }
    return n;
}

/* ------------------------------------------------------ standby copies
 * state.standby > 0 (standby.h): partitions placed here that are not
 * owned are kept warm from the changelog; one that is assigned restores
 * the changelog tail after its copy only; a revoked one that is placed
 * here stays in memory as a warm copy (neither saved nor dropped). */

void rs_parts_set_standby(rs_parts_t *pt, rs_standby_t *sb, int n) {
    pt->sb = n > 0 ? sb : NULL;
    pt->sb_n = n;
    if (pt->sb && !pt->sb_owned) {
        pt->sb_owned = rs_calloc(RS_PARTS_MAX, sizeof(*pt->sb_owned));
        pt->sb_target = rs_calloc(RS_PARTS_MAX, sizeof(*pt->sb_target));
        pt->sb_want = rs_calloc(RS_PARTS_MAX, 1);
    }
    pt->sb_gen = pt->gen - 1; /* placed at the next tick */
}

/* Partition p is assigned and has a standby copy: take it, read the
 * changelog after it.  1 if the state comes from it (start[] set), 0 if
 * not (the copy is gone: the usual sources follow). */
static int rs_parts_from_standby(rs_parts_t *pt, int32_t p,
                                 const int64_t committed[2],
                                 int64_t start[2]) {
    char e2[512];
    if (!rs_standby_has(pt->sb, p)) {
        if (!pt->sb_placed) {
            /* before the first placement the stores may still hold a
             * former copy's state from the instance checkpoint (not a
             * held partition's): never restored or replayed on top of */
            pt->ops.ckpt_abort(pt->ops.svc);
            rs_pstate_drop(pt->ps, p, NULL);
        }
        return 0;
    }
    int64_t t0 = rs_clock_mono_us();
    pt->ops.ckpt_abort(pt->ops.svc);
    rs_pstate_pos_t pos;
    if (!rs_standby_take(pt->sb, p, &pos)) {
        rs_info("state", "partition %d: its standby copy had read no "
                "complete batch yet: not used", (int)p);
        return 0;
    }
    pt->st[p] = RS_PART_OWNED;
    rs_pstate_restore_begin(pt->ps);
    int64_t at = pos.changelog;
    uint64_t nrec = 0;
    int64_t hwm = pt->ops.cl_hwm ? pt->ops.cl_hwm(pt->ops.svc, p) : -1;
    if (hwm > at) {
        rs_pstate_pos_t cpos;
        rs_err_t cerr = pt->ops.cl_restore(pt->ops.svc, p, at, &cpos, &nrec,
                                           e2, sizeof(e2));
        if (cerr == RS_OK) {
            pos = cpos;
        } else if (cerr != RS_ERR_NOTFOUND) {
            rs_warn("state", "partition %d: changelog tail after its standby "
                    "copy not used (%s): the copy is dropped", (int)p, e2);
            rs_pstate_drop(pt->ps, p, NULL);
            pt->st[p] = RS_PART_NONE;
            rs_pstate_restore_end(pt->ps, 'm', 0, 0);
            return 0;
        } else {
            nrec = 0; /* records after it, but no marker: not applied */
        }
    }
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p, pos.events);
    pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p, pos.labels);
    /* the log end in a marker is the writer's log: never this one's */
    pt->ops.log_restore(pt->ops.svc, p, UINT64_MAX);
    pt->cl_off[p] = pos.changelog;
    int64_t off[2] = {pos.events, pos.labels};
    for (int t = 0; t < 2; t++)
        start[t] = off[t] >= 0 ? off[t]
                   : committed[t] > 0 ? RS_INGEST_START_BEGINNING
                                      : RS_INGEST_START_COMMITTED;
    double s = (double)(rs_clock_mono_us() - t0) / 1e6;
    rs_pstate_restore_end(pt->ps, 's', nrec, s);
    rs_info("state", "partition %d: restored from its standby copy "
            "(standby at changelog offset %lld, %llu records of tail) in "
            "%.0f ms: events offset %lld (committed %lld), labels offset "
            "%lld (committed %lld)", (int)p, (long long)at,
            (unsigned long long)nrec, s * 1e3, (long long)pos.events,
            (long long)committed[0], (long long)pos.labels,
            (long long)committed[1]);
    return 1;
}

/* Between polls, once a rebalance is over and the assignment changed (or
 * partitions are parked): the placement (rs_standby_place) applied --
 * parked partitions placed here become warm copies, copies no longer
 * placed are dropped, placed partitions without one start cold.  The
 * first time, state left in the stores by an instance checkpoint for
 * partitions that are neither held nor placed (a standby copy when it was
 * taken) is dropped. */
static void rs_parts_sb_tick(rs_parts_t *pt) {
    if (!pt->assigned_once || (pt->gen == pt->sb_gen && !pt->nparked) ||
        pt->ops.rebalancing(pt->ops.svc))
        return;
    int64_t now = rs_clock_mono_us();
    if (now < pt->sb_retry_us) return;
    int np = rs_standby_nparts(pt->sb, 2000);
    if (np <= 0) {
        pt->sb_retry_us = now + 10000000;
        rs_warn("standby", "the changelog's partition count is not known: "
                "standby copies wait (asked again in 10 s)");
        return;
    }
    if (np > RS_PARTS_MAX) np = RS_PARTS_MAX;
    int no = 0;
    for (int32_t p = 0; p < np; p++)
        if (pt->st[p] == RS_PART_OWNED ||
            (pt->st[p] == RS_PART_PARKED && pt->ops.owns(pt->ops.svc, p)))
            pt->sb_owned[no++] = p;
    int nt = rs_standby_place(pt->sb_owned, no, np, pt->sb_n, pt->sb_target);
    memset(pt->sb_want, 0, RS_PARTS_MAX);
    for (int i = 0; i < nt; i++) pt->sb_want[pt->sb_target[i]] = 1;
    /* parked, not coming back, placed here: a warm copy */
    for (int32_t p = 0; p < np && pt->nparked; p++) {
        if (pt->st[p] != RS_PART_PARKED || !pt->sb_want[p] ||
            pt->ops.owns(pt->ops.svc, p))
            continue;
        int64_t ce = pt->ops.cl_end ? pt->ops.cl_end(pt->ops.svc, p) : -1;
        rs_pstate_pos_t pos = {
            pt->ops.applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p),
            pt->ops.applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p),
            pt->ops.log_end(pt->ops.svc, p),
            ce > pt->cl_off[p] ? ce : pt->cl_off[p]};
        if (pos.changelog < 0) continue; /* where it stands is not known */
        pt->ops.ckpt_abort(pt->ops.svc);
        rs_standby_add(pt->sb, p, &pos);
        /* forgotten here but for the state, which the copy keeps */
        pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_EVENTS, p, -1);
        pt->ops.set_applied(pt->ops.svc, RS_MSG_TOPIC_LABELS, p, -1);
        pt->ops.log_close(pt->ops.svc, p);
        pt->cl_off[p] = -1;
        pt->nparked--;
        pt->st[p] = RS_PART_NONE;
        rs_info("standby", "partition %d left: kept warm as a standby copy "
                "(changelog offset %lld, events offset %lld, labels offset "
                "%lld)", (int)p, (long long)pos.changelog,
                (long long)pos.events, (long long)pos.labels);
    }
    if (pt->gen == pt->sb_gen) return; /* the rest: placement unchanged */
    for (int32_t p = 0; p < RS_PARTS_MAX; p++) {
        if (!rs_standby_has(pt->sb, p) || pt->sb_want[p]) continue;
        uint64_t nk = 0;
        pt->ops.ckpt_abort(pt->ops.svc);
        rs_standby_remove(pt->sb, p, &nk);
        rs_info("standby", "partition %d: standby copy dropped (%llu entity "
                "keys): no longer placed here", (int)p,
                (unsigned long long)nk);
    }
    if (!pt->sb_placed) {
        for (int32_t p = 0; p < np; p++) {
            if (pt->st[p] != RS_PART_NONE || rs_standby_has(pt->sb, p))
                continue;
            uint64_t nk = 0;
            pt->ops.ckpt_abort(pt->ops.svc);
            rs_pstate_drop(pt->ps, p, &nk);
            if (nk)
                rs_info("standby", "partition %d: %llu entity keys of a "
                        "former standby copy (instance checkpoint) dropped",
                        (int)p, (unsigned long long)nk);
        }
        pt->sb_placed = 1;
    }
    int ncold = 0, later = 0;
    for (int i = 0; i < nt; i++) {
        int32_t p = pt->sb_target[i];
        /* parked without a changelog position (held from the instance
         * checkpoint): saved and dropped below, started cold next tick */
        later += pt->st[p] == RS_PART_PARKED;
        if (pt->st[p] != RS_PART_NONE || rs_standby_has(pt->sb, p)) continue;
        pt->ops.ckpt_abort(pt->ops.svc);
        rs_standby_add(pt->sb, p, NULL);
        ncold++;
        rs_info("standby", "partition %d: standby copy started from the "
                "changelog's start", (int)p);
    }
    if (!later) pt->sb_gen = pt->gen;
    rs_info("standby", "placement: %d partition(s) owned, standby copies of "
            "%d (state.standby %d, %d partitions), %d started cold", no, nt,
            pt->sb_n, np, ncold);
}
