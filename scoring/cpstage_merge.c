/* cpstage_merge.c -- the counterparty stage's merge core (cpstage_int.h):
 * the canonical k-way merge of every input partition into the shared
 * feature store, and the per-partition FIFOs of results.
 *
 * Invariants:
 *  - a partition's messages are merged in the order they were pushed;
 *  - the merge takes the head with the smallest (time, topic, partition)
 *    only when no partition is "unknown" (no head, not idle): so the
 *    merged sequence is a function of the partitions' contents, whatever
 *    the fetch interleaving -- the results of two stores fed the same
 *    partitions are equal bit for bit;
 *  - the result FIFO of a partition is sorted by offset (merge order
 *    within a partition = offset order).
 * The ordering decisions are the shared core's (common/tmerge.h, also
 * used by the scoring consumer's per-task merge): input g = topic * np[0]
 * + partition, so its (time, input) order is (time, topic, partition).
 * Cost per merged message: O(log P) (P = partitions of both topics), not
 * O(P) (the core's heap and set of empty inputs).  A partition whose head
 * needs decoding is on a pending list (PENDING in the core) and is decoded
 * at the same point the full scan did (next merge iteration).
 * tests/scoring/test_cpstage.c compares it with that full scan.
 * Allocation: the raw queues and result FIFOs grow by doubling when full
 * (on the owner thread, off the scoring thread); nothing per message.
 */
#include "scoring/cpstage_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/tmerge.h"
#include "proto/proto.h"
#include "scoring/dedup.h"

#define RS_CPM_UNKNOWN INT64_MIN

typedef struct rs_cpm_raw_s {
    const void *payload;
    size_t len;
    int64_t offset;
    void *handle;
    int64_t at_ms;            /* arrival (rs_cpm_arrival's clock)         */
} rs_cpm_raw_t;

/* One result: offset, id hash, then float[nshared]. */
typedef struct rs_cpm_res_s {
    int64_t offset;
    uint64_t idh;
} rs_cpm_res_t;

typedef struct rs_cpm_part_s {
    rs_cpm_raw_t *q;          /* [qcap] raw FIFO                          */
    uint32_t qcap, qhead, qn;
    int have;                 /* the head q[qhead] is decoded             */
    int valid;                /* ... and valid (else it is skipped)       */
    int64_t key_t;            /* its merge time                           */
    rs_event_t *ev;           /* events topic: the decoded head           */
    rs_label_t lb;            /* labels topic                             */
    int64_t wm;               /* newest accepted event time (future skew) */
    int64_t next_off;         /* one past the last merged offset          */
    int64_t end_off;          /* one past the last pushed offset (0: none) */
    int64_t last[RS_CPM_SOURCES]; /* each source's last offset read here
                               * (RS_CPM_UNKNOWN: not since its reset)    */
    int synced[RS_CPM_SOURCES]; /* a message of the source was pushed here
                               * since its reset (it is in step)          */
    int eof;                  /* at its end since the last push (EOF or
                               * high watermark)                          */
    /* results (events topic) */
    uint8_t *res;             /* [rcap][res_size]                         */
    uint32_t rcap, rhead, rn;
    int pending;              /* on the pending-decode list               */
} rs_cpm_part_t;

struct rs_cpm_s {
    rs_cpm_conf_t conf;
    rs_features_t *store;
    rs_dedup_t *dedup;
    int dim, nsh;
    int *sh;                  /* [nsh] shared feature indexes             */
    float *x;                 /* [dim] scratch vector                     */
    size_t res_size;          /* sizeof(rs_cpm_res_t) + 4 nsh, 8-aligned  */
    int np[2];
    rs_cpm_part_t *p[2];      /* [np[t]]                                  */
    int ntot;                 /* np[0] + np[1]                            */
    rs_tmerge_t *tm;          /* the ordering core: input g = topic *
                              * np[0] + partition                         */
    int32_t *pend;            /* [ntot] pending-decode list               */
    int pn;
    int64_t now_ms;           /* the clock of the running step            */
    int64_t arrival_ms;       /* of the messages pushed (rs_cpm_arrival)  */
    rs_cpm_stats_t st;
};

/* ------------------------------------------------------------- create */

rs_cpm_t *rs_cpm_new(const rs_cpm_conf_t *conf, char *errstr,
                     size_t errstr_size) {
    rs_cpm_t *m = rs_calloc(1, sizeof(*m));
    m->conf = *conf;
    rs_features_conf_t fc = *conf->features;
    fc.max_keys = 1; /* the entity table is the scoring stage's */
    m->store = rs_features_new(&fc, errstr, errstr_size);
    if (!m->store) goto fail;
    rs_features_set_scope(m->store, RS_FEATURES_SCOPE_SHARED);
    m->dim = rs_features_dim(m->store);
    m->sh = rs_calloc((size_t)m->dim + 1, sizeof(int));
    for (int i = 0; i < m->dim; i++)
        if (rs_features_is_shared(m->store, i)) m->sh[m->nsh++] = i;
    m->x = rs_calloc((size_t)m->dim + 1, sizeof(float));
    m->res_size = (sizeof(rs_cpm_res_t) + 4 * (size_t)m->nsh + 7) & ~(size_t)7;
    if (conf->dedup_window_ms > 0) {
        m->dedup = rs_dedup_new((uint64_t)conf->dedup_max,
                                conf->dedup_window_ms, errstr, errstr_size);
        if (!m->dedup) goto fail;
    }
    for (int t = 0; t < 2; t++)
        m->np[t] = conf->nparts[t] > 0 ? conf->nparts[t] : 0;
    m->ntot = m->np[0] + m->np[1];
    m->tm = rs_tmerge_new(m->ntot, conf->idle_wait_ms);
    m->pend = rs_calloc((size_t)m->ntot + 1, sizeof(*m->pend));
    for (int t = 0; t < 2; t++) {
        m->p[t] = rs_calloc((size_t)m->np[t] + 1, sizeof(rs_cpm_part_t));
        for (int i = 0; i < m->np[t]; i++) {
            rs_cpm_part_t *p = &m->p[t][i];
            p->wm = INT64_MIN;
            p->last[RS_CPM_SRC_STAGE] = -1; /* reads from the beginning */
            for (int s = 1; s < RS_CPM_SOURCES; s++)
                p->last[s] = RS_CPM_UNKNOWN;
            if (t == 0) p->ev = rs_calloc(1, sizeof(rs_event_t));
        }
    }
    m->st.frontier_ms = INT64_MIN;
    m->st.blocked_topic = -1;
    return m;
fail:
    rs_cpm_destroy(m);
    return NULL;
}

void rs_cpm_destroy(rs_cpm_t *m) {
    if (!m) return;
    for (int t = 0; t < 2; t++) {
        for (int i = 0; m->p[t] && i < m->np[t]; i++) {
            rs_cpm_part_t *p = &m->p[t][i];
            for (uint32_t k = 0; k < p->qn; k++) {
                rs_cpm_raw_t *r = &p->q[(p->qhead + k) % p->qcap];
                if (m->conf.release) m->conf.release(r->handle);
            }
            free(p->q);
            free(p->res);
            free(p->ev);
        }
        free(m->p[t]);
    }
    rs_tmerge_destroy(m->tm);
    free(m->pend);
    rs_dedup_destroy(m->dedup);
    rs_features_destroy(m->store);
    free(m->sh);
    free(m->x);
    free(m);
}

int rs_cpm_nshared(const rs_cpm_t *m) { return m->nsh; }
const int *rs_cpm_shared_idx(const rs_cpm_t *m) { return m->sh; }

/* ------------------------------------------- merge bookkeeping */

static rs_cpm_part_t *rs_cpm_part_g(rs_cpm_t *m, int32_t g) {
    return g < m->np[0] ? &m->p[0][g] : &m->p[1][g - m->np[0]];
}

static void rs_cpm_pend_add(rs_cpm_t *m, int32_t g, rs_cpm_part_t *p) {
    if (p->pending) return;
    p->pending = 1;
    m->pend[m->pn++] = g;
}

/* ---------------------------------------------------------- raw input */

int rs_cpm_push(rs_cpm_t *m, int topic, int32_t part, int64_t offset,
                const void *payload, size_t len, void *handle) {
    return rs_cpm_push_from(m, RS_CPM_SRC_STAGE, topic, part, offset, payload,
                            len, handle);
}

/* Whether source `src`'s message at `offset` is the partition's next
 * message: every message below it has been pushed (offset >= end_off) and
 * none in [end_off, offset) exists.  The source's own read is contiguous
 * since its reset, so the second part holds when its previous message
 * (last) is below end_off: nothing it read between is missing.  A feed
 * source must also have read two adjacent offsets once since its reset
 * before its first push since the reset (after a seek, its first message
 * may follow anything it read before). */
static int rs_cpm_accept(const rs_cpm_part_t *p, int src, int64_t offset) {
    int64_t last = p->last[src];
    if (offset < p->end_off || last == RS_CPM_UNKNOWN || last >= p->end_off)
        return 0;
    return src == RS_CPM_SRC_STAGE || p->synced[src] || offset == last + 1;
}

int rs_cpm_push_from(rs_cpm_t *m, int src, int topic, int32_t part,
                     int64_t offset, const void *payload, size_t len,
                     void *handle) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic] ||
        src < 0 || src >= RS_CPM_SOURCES) {
        if (m->conf.release) m->conf.release(handle);
        return -1;
    }
    rs_cpm_part_t *p = &m->p[topic][part];
    int ok = rs_cpm_accept(p, src, offset);
    p->last[src] = offset;
    if (!ok) {
        if (offset < p->end_off) m->st.src_dup[src]++;
        else m->st.src_gap[src]++;
        if (m->conf.release) m->conf.release(handle);
        return 1;
    }
    m->st.src_pushed[src]++;
    p->synced[src] = 1;
    int32_t g = topic * m->np[0] + part;
    if (!p->qn) { /* its new head is decoded at the next step */
        rs_tmerge_pending(m->tm, g);
        rs_cpm_pend_add(m, g, p);
    }
    if (p->qn == p->qcap) { /* grow: unwrap into a twice larger ring */
        uint32_t nc = p->qcap ? p->qcap * 2 : 256;
        rs_cpm_raw_t *nq = rs_calloc(nc, sizeof(*nq));
        for (uint32_t k = 0; k < p->qn; k++)
            nq[k] = p->q[(p->qhead + k) % p->qcap];
        free(p->q);
        p->q = nq;
        p->qcap = nc;
        p->qhead = 0;
    }
    p->q[(p->qhead + p->qn) % p->qcap] =
        (rs_cpm_raw_t){payload, len, offset, handle, m->arrival_ms};
    p->qn++;
    p->end_off = offset + 1;
    p->eof = 0;
    rs_tmerge_eof(m->tm, g, 0, 0);
    m->st.buffered++;
    return 0;
}

void rs_cpm_src_reset(rs_cpm_t *m, int src) {
    if (src <= RS_CPM_SRC_STAGE || src >= RS_CPM_SOURCES) return;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < m->np[t]; i++) {
            m->p[t][i].last[src] = RS_CPM_UNKNOWN;
            m->p[t][i].synced[src] = 0;
        }
}

void rs_cpm_eof(rs_cpm_t *m, int topic, int32_t part, int64_t now_ms) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return;
    /* at its end after the messages pushed so far (a push clears it) */
    rs_cpm_part_t *p = &m->p[topic][part];
    if (!p->eof) m->st.ends_eof++;
    p->eof = 1;
    rs_tmerge_eof(m->tm, topic * m->np[0] + part, 1, now_ms);
}

int rs_cpm_hwm(rs_cpm_t *m, int topic, int32_t part, int64_t hwm,
               int64_t now_ms) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic] || hwm < 0)
        return 0;
    rs_cpm_part_t *p = &m->p[topic][part];
    /* end_off < hwm: the consumer knows of a message not pushed yet */
    if (p->eof || p->end_off < hwm) return 0;
    p->eof = 1;
    m->st.ends_hwm++;
    rs_tmerge_eof(m->tm, topic * m->np[0] + part, 1, now_ms);
    return 1;
}

int rs_cpm_not_end(rs_cpm_t *m, int topic, int32_t part, int64_t hwm) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return 0;
    rs_cpm_part_t *p = &m->p[topic][part];
    if (!p->eof || hwm <= p->end_off) return 0;
    p->eof = 0;
    rs_tmerge_eof(m->tm, topic * m->np[0] + part, 0, 0);
    return 1;
}

void rs_cpm_arrival(rs_cpm_t *m, int64_t now_ms) { m->arrival_ms = now_ms; }

int64_t rs_cpm_end_off(const rs_cpm_t *m, int topic, int32_t part) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return 0;
    return m->p[topic][part].end_off;
}

uint32_t rs_cpm_buffered(const rs_cpm_t *m, int topic, int32_t part) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return 0;
    return m->p[topic][part].qn;
}

/* Drop the head (merged or skipped) of partition p. */
static void rs_cpm_pop(rs_cpm_t *m, rs_cpm_part_t *p) {
    rs_cpm_raw_t *r = &p->q[p->qhead];
    p->next_off = r->offset + 1;
    if (m->conf.release) m->conf.release(r->handle);
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qn--;
    p->have = 0;
    m->st.buffered--;
}

/* Decode the head of (topic, p) if not done: 1 if it has a valid head,
 * 0 if the queue is empty.  Invalid heads are skipped (counted). */
static int rs_cpm_head(rs_cpm_t *m, int topic, rs_cpm_part_t *p) {
    char reason[160];
    while (p->qn) {
        if (p->have) return 1;
        const rs_cpm_raw_t *r = &p->q[p->qhead];
        rs_err_t err;
        if (!r->payload || !r->len || r->len > RS_MSG_MAX) {
            err = RS_ERR_INVALID;
        } else if (topic == 0) {
            err = rs_event_decode((rs_format_t)m->conf.events_format,
                                  r->payload, r->len, p->ev, reason,
                                  sizeof(reason));
            if (err == RS_OK && m->conf.future_skew_ms > 0) {
                /* the consumer's event-time bound (ingest.h), so the
                 * store holds what the scoring stage accepts; the bound
                 * is max(wm, wall) + skew, so within wm + skew an event
                 * passes without a clock read (most do: one read per
                 * event before) */
                int64_t t = p->ev->event_time_ms, ref = p->wm;
                if (t > ref + m->conf.future_skew_ms) {
                    int64_t wall = rs_clock_wall_ms();
                    if (wall > ref) ref = wall;
                }
                if (t > ref + m->conf.future_skew_ms)
                    err = RS_ERR_INVALID;
                else if (p->ev->event_time_ms > p->wm)
                    p->wm = p->ev->event_time_ms;
            }
            if (err == RS_OK) p->key_t = p->ev->event_time_ms;
        } else {
            err = rs_label_decode((rs_format_t)m->conf.labels_format,
                                  r->payload, r->len, &p->lb, reason,
                                  sizeof(reason));
            if (err == RS_OK) p->key_t = p->lb.label_time_ms;
        }
        if (err == RS_OK) {
            p->have = p->valid = 1;
            return 1;
        }
        m->st.rejected++;
        rs_cpm_pop(m, p);
    }
    return 0;
}

/* ------------------------------------------------------------- results */

static uint8_t *rs_cpm_res_at(const rs_cpm_t *m, const rs_cpm_part_t *p,
                              uint32_t k) {
    return p->res + (size_t)((p->rhead + k) % p->rcap) * m->res_size;
}

static void rs_cpm_res_add(rs_cpm_t *m, rs_cpm_part_t *p, int64_t offset,
                           uint64_t idh) {
    if (p->rn == p->rcap) {
        uint32_t nc = p->rcap ? p->rcap * 2 : 1024;
        uint8_t *nr = rs_malloc((size_t)nc * m->res_size);
        for (uint32_t k = 0; k < p->rn; k++)
            memcpy(nr + (size_t)k * m->res_size, rs_cpm_res_at(m, p, k),
                   m->res_size);
        free(p->res);
        p->res = nr;
        p->rcap = nc;
        p->rhead = 0;
    }
    uint8_t *e = p->res + (size_t)((p->rhead + p->rn) % p->rcap) * m->res_size;
    rs_cpm_res_t h = {offset, idh};
    memcpy(e, &h, sizeof(h));
    float *v = (float *)(e + sizeof(h));
    for (int k = 0; k < m->nsh; k++) v[k] = m->x[m->sh[k]];
    p->rn++;
    m->st.held++;
}

void rs_cpm_trim(rs_cpm_t *m, int32_t part, int64_t floor) {
    if (part < 0 || part >= m->np[0]) return;
    rs_cpm_part_t *p = &m->p[0][part];
    while (p->rn) {
        rs_cpm_res_t h;
        memcpy(&h, rs_cpm_res_at(m, p, 0), sizeof(h));
        if (h.offset >= floor) break;
        p->rhead = (p->rhead + 1) % p->rcap;
        p->rn--;
        m->st.held--;
    }
}

rs_err_t rs_cpm_find(const rs_cpm_t *m, int32_t part, int64_t offset,
                     uint64_t idh, float *out) {
    if (part < 0 || part >= m->np[0]) return RS_ERR_NOTFOUND;
    const rs_cpm_part_t *p = &m->p[0][part];
    /* binary search: offsets increase along the FIFO */
    uint32_t lo = 0, hi = p->rn;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        rs_cpm_res_t h;
        memcpy(&h, rs_cpm_res_at(m, p, mid), sizeof(h));
        if (h.offset < offset) lo = mid + 1;
        else hi = mid;
    }
    if (lo < p->rn) {
        const uint8_t *e = rs_cpm_res_at(m, p, lo);
        rs_cpm_res_t h;
        memcpy(&h, e, sizeof(h));
        if (h.offset == offset) {
            if (h.idh != idh) return RS_ERR_NOTFOUND;
            const float *v = (const float *)(e + sizeof(h));
            for (int k = 0; k < m->nsh; k++) out[m->sh[k]] = v[k];
            return RS_OK;
        }
    }
    return p->next_off > offset ? RS_ERR_NOTFOUND : RS_ERR_AGAIN;
}

/* --------------------------------------------------------------- merge */

/* Merge the head of (topic, part): the core took it (tk). */
static void rs_cpm_apply(rs_cpm_t *m, int topic, int32_t part,
                         const rs_tmerge_take_t *tk) {
    rs_cpm_part_t *p = &m->p[topic][part];
    if (tk->reordered) {
        m->st.reordered++;
        m->st.reorder_topic = topic;
        m->st.reorder_part = part;
        m->st.reorder_behind_ms = tk->behind_ms;
        m->st.reorder_late_ms = tk->late_ms;
        m->st.reorder_late_min = tk->late_min;
        if (tk->late_ms > m->st.reorder_late_max_ms)
            m->st.reorder_late_max_ms = tk->late_ms;
        m->st.reorder_late[rs_tmerge_late_bucket(tk)]++;
    }
    m->st.frontier_ms = tk->key_t;
    if (topic == 0) {
        const rs_event_t *ev = p->ev;
        int64_t offset = p->q[p->qhead].offset;
        uint64_t dd;
        if (m->dedup &&
            rs_dedup_check(m->dedup, rs_dedup_key(ev->entity_id, ev->id),
                           ev->event_time_ms, &dd)) {
            m->st.duplicates++;
        } else if (rs_features_process(m->store, ev, m->x, NULL) == RS_OK) {
            rs_cpm_res_add(m, p, offset, rs_hash_str(ev->id));
            m->st.events++;
        } else {
            m->st.rejected++;
        }
    } else {
        rs_features_label(m->store, &p->lb); /* unknown: counted there */
        m->st.labels++;
    }
    rs_cpm_pop(m, p);
}

/* Decode the heads of the pending partitions: a valid head is keyed in
 * the core, a partition left empty (every message invalid) is EMPTY. */
static void rs_cpm_decode_pending(rs_cpm_t *m) {
    for (int k = 0; k < m->pn; k++) {
        int32_t g = m->pend[k];
        int topic = g >= m->np[0];
        rs_cpm_part_t *p = rs_cpm_part_g(m, g);
        p->pending = 0;
        if (rs_cpm_head(m, topic, p))
            rs_tmerge_head(m->tm, g, p->key_t, p->q[p->qhead].at_ms);
        else
            rs_tmerge_empty(m->tm, g);
    }
    m->pn = 0;
}

/* Every partition without a head must be idle: at its end for idle_wait
 * since the head to merge arrived (or since it reached its end, if later)
 * -- the core's rule (common/tmerge.h, Kafka Streams' max.task.idle.ms,
 * per message). */
int rs_cpm_step(rs_cpm_t *m, int64_t now_ms, int max) {
    int n = 0;
    m->now_ms = now_ms;
    m->st.blocked_topic = -1;
    while (n < max) {
        rs_cpm_decode_pending(m);
        int32_t g = rs_tmerge_next(m->tm, now_ms);
        if (g < 0) {
            int32_t bg = rs_tmerge_blocked(m->tm);
            if (bg >= 0) {
                m->st.blocked_topic = bg >= m->np[0];
                m->st.blocked_part = bg - (m->st.blocked_topic ? m->np[0] : 0);
            }
            return n;
        }
        rs_tmerge_take_t tk;
        rs_tmerge_take(m->tm, g, &tk);
        int topic = g >= m->np[0];
        int32_t part = g - (topic ? m->np[0] : 0);
        rs_cpm_part_t *p = rs_cpm_part_g(m, g);
        rs_cpm_apply(m, topic, part, &tk);
        if (p->qn) rs_cpm_pend_add(m, g, p); /* its next head */
        else rs_tmerge_empty(m->tm, g);
        n++;
    }
    return n;
}

int rs_cpm_caught_up(const rs_cpm_t *m) {
    for (int t = 0; t < 2; t++)
        for (int32_t i = 0; i < m->np[t]; i++)
            if (!rs_tmerge_done_once(m->tm, t * m->np[0] + i)) return 0;
    return 1;
}

void rs_cpm_stats(const rs_cpm_t *m, rs_cpm_stats_t *st) { *st = m->st; }

void rs_cpm_store_stats(const rs_cpm_t *m, rs_features_stats_t *st) {
    rs_features_stats(m->store, st);
}
