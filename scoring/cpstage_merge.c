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
 * Cost per merged message: O(log P) (P = partitions of both topics), not
 * O(P): the partitions with a decoded head sit in a binary min-heap keyed
 * by (time, topic, partition) -- the same total order as a scan of every
 * head in (topic, partition) order with ties to the lower index; the
 * partitions whose queue is empty are kept in a set E, and their checks
 * (idle or blocking, idle_passed) are done again only when E changed or
 * at the start of a step (the clock and eof flags move between steps
 * only); in between only the next head's arrival is compared with
 * idle_wait.  A partition whose head needs decoding is on a pending list and
 * is decoded at the same point the full scan did (next merge iteration).
 * tests/scoring/test_cpstage.c compares it with that full scan.
 * Allocation: the raw queues and result FIFOs grow by doubling when full
 * (on the owner thread, off the scoring thread); nothing per message.
 */
#include "scoring/cpstage_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"
#include "scoring/dedup.h"

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
    int eof;                  /* at its end (no message after the last
                              * pushed)                                  */
    int64_t eof_ms;           /* ... since (rs_cpm_eof's clock)           */
    int idle_passed;          /* the merge went on without it (idle)      */
    int64_t passed_ms;        /* ... since (the step's clock)             */
    int done_once;            /* merged to its end at least once          */
    int64_t wm;               /* newest accepted event time (future skew) */
    int64_t next_off;         /* one past the last merged offset          */
    /* results (events topic) */
    uint8_t *res;             /* [rcap][res_size]                         */
    uint32_t rcap, rhead, rn;
    /* merge bookkeeping (see the top of the file) */
    int32_t epos;             /* index in the empty set E, -1: not in it  */
    int pending;              /* on the pending-decode list               */
} rs_cpm_part_t;

/* A heap entry: a partition with a decoded valid head.  g is the global
 * index topic * np[0] + partition, so (key_t, g) orders as (time, topic,
 * partition). */
typedef struct rs_cpm_hent_s {
    int64_t key_t;
    int32_t g;
} rs_cpm_hent_t;

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
    rs_cpm_hent_t *heap;      /* [ntot] min-heap of the valid heads       */
    int hn;
    int32_t *eset;            /* [ntot] E: global indexes, unordered      */
    int en;
    int edirty;               /* E changed since its last check           */
    int32_t emin;             /* its lowest member at that check          */
    int32_t *pend;            /* [ntot] pending-decode list               */
    int pn;
    /* the last merged key: (t, topic, partition) */
    int64_t last_t;
    int64_t now_ms;           /* the clock of the running step            */
    int64_t arrival_ms;       /* of the messages pushed (rs_cpm_arrival)  */
    int last_topic;
    int32_t last_part;
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
    m->heap = rs_calloc((size_t)m->ntot + 1, sizeof(*m->heap));
    m->eset = rs_calloc((size_t)m->ntot + 1, sizeof(*m->eset));
    m->pend = rs_calloc((size_t)m->ntot + 1, sizeof(*m->pend));
    for (int t = 0; t < 2; t++) {
        m->p[t] = rs_calloc((size_t)m->np[t] + 1, sizeof(rs_cpm_part_t));
        for (int i = 0; i < m->np[t]; i++) {
            rs_cpm_part_t *p = &m->p[t][i];
            p->wm = INT64_MIN;
            if (t == 0) p->ev = rs_calloc(1, sizeof(rs_event_t));
            p->epos = m->en; /* every partition starts empty */
            m->eset[m->en++] = t * m->np[0] + i;
        }
    }
    m->edirty = 1;
    m->last_t = INT64_MIN;
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
    free(m->heap);
    free(m->eset);
    free(m->pend);
    rs_dedup_destroy(m->dedup);
    rs_features_destroy(m->store);
    free(m->sh);
    free(m->x);
    free(m);
}

int rs_cpm_nshared(const rs_cpm_t *m) { return m->nsh; }
const int *rs_cpm_shared_idx(const rs_cpm_t *m) { return m->sh; }

/* ------------------------------------------- merge bookkeeping sets */

static rs_cpm_part_t *rs_cpm_part_g(rs_cpm_t *m, int32_t g) {
    return g < m->np[0] ? &m->p[0][g] : &m->p[1][g - m->np[0]];
}

static void rs_cpm_eset_add(rs_cpm_t *m, int32_t g, rs_cpm_part_t *p) {
    p->epos = m->en;
    m->eset[m->en++] = g;
    m->edirty = 1;
}

static void rs_cpm_eset_del(rs_cpm_t *m, rs_cpm_part_t *p) {
    int32_t k = p->epos, last = m->eset[--m->en];
    m->eset[k] = last;
    rs_cpm_part_g(m, last)->epos = k;
    p->epos = -1;
    m->edirty = 1;
}

static void rs_cpm_pend_add(rs_cpm_t *m, int32_t g, rs_cpm_part_t *p) {
    if (p->pending) return;
    p->pending = 1;
    m->pend[m->pn++] = g;
}

static int rs_cpm_hless(const rs_cpm_hent_t *a, const rs_cpm_hent_t *b) {
    return a->key_t < b->key_t || (a->key_t == b->key_t && a->g < b->g);
}

static void rs_cpm_heap_push(rs_cpm_t *m, int64_t key_t, int32_t g) {
    rs_cpm_hent_t e = {key_t, g};
    int k = m->hn++;
    while (k > 0) {
        int up = (k - 1) / 2;
        if (!rs_cpm_hless(&e, &m->heap[up])) break;
        m->heap[k] = m->heap[up];
        k = up;
    }
    m->heap[k] = e;
}

static void rs_cpm_heap_pop(rs_cpm_t *m) {
    rs_cpm_hent_t e = m->heap[--m->hn];
    int k = 0;
    for (;;) {
        int c = 2 * k + 1;
        if (c >= m->hn) break;
        if (c + 1 < m->hn && rs_cpm_hless(&m->heap[c + 1], &m->heap[c])) c++;
        if (!rs_cpm_hless(&m->heap[c], &e)) break;
        m->heap[k] = m->heap[c];
        k = c;
    }
    if (m->hn) m->heap[k] = e;
}

/* ---------------------------------------------------------- raw input */

int rs_cpm_push(rs_cpm_t *m, int topic, int32_t part, int64_t offset,
                const void *payload, size_t len, void *handle) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) {
        if (m->conf.release) m->conf.release(handle);
        return -1;
    }
    rs_cpm_part_t *p = &m->p[topic][part];
    if (!p->qn) { /* leaves E; its new head is decoded at the next step */
        rs_cpm_eset_del(m, p);
        rs_cpm_pend_add(m, topic * m->np[0] + part, p);
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
    p->eof = 0;
    m->st.buffered++;
    return 0;
}

void rs_cpm_eof(rs_cpm_t *m, int topic, int32_t part, int64_t now_ms) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return;
    /* at its end after the messages pushed so far (a push clears it) */
    rs_cpm_part_t *p = &m->p[topic][part];
    if (!p->eof) p->eof_ms = now_ms;
    p->eof = 1;
}

void rs_cpm_arrival(rs_cpm_t *m, int64_t now_ms) { m->arrival_ms = now_ms; }

uint32_t rs_cpm_buffered(const rs_cpm_t *m, int topic, int32_t part) {
    if (topic < 0 || topic > 1 || part < 0 || part >= m->np[topic]) return 0;
    return m->p[topic][part].qn;
}

/* Drop the head (merged or skipped) of partition g = p. */
static void rs_cpm_pop(rs_cpm_t *m, int32_t g, rs_cpm_part_t *p) {
    rs_cpm_raw_t *r = &p->q[p->qhead];
    p->next_off = r->offset + 1;
    if (m->conf.release) m->conf.release(r->handle);
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qn--;
    p->have = 0;
    m->st.buffered--;
    if (!p->qn) rs_cpm_eset_add(m, g, p);
}

/* Decode the head of (topic, p) if not done: 1 if it has a valid head,
 * 0 if the queue is empty.  Invalid heads are skipped (counted). */
static int rs_cpm_head(rs_cpm_t *m, int topic, int32_t g, rs_cpm_part_t *p) {
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
                 * store holds what the scoring stage accepts */
                int64_t wall = rs_clock_wall_ms();
                int64_t ref = p->wm > wall ? p->wm : wall;
                if (p->ev->event_time_ms > ref + m->conf.future_skew_ms)
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
        rs_cpm_pop(m, g, p);
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

/* Merge the head of (topic, part). */
static void rs_cpm_apply(rs_cpm_t *m, int topic, int32_t part) {
    rs_cpm_part_t *p = &m->p[topic][part];
    int64_t t = p->key_t;
    /* below the frontier: only a partition the merge passed as idle can
     * bring that (a partition's own late events come in its order) */
    if (p->idle_passed &&
        (t < m->last_t ||
         (t == m->last_t && (topic < m->last_topic ||
                             (topic == m->last_topic && part < m->last_part))))) {
        m->st.reordered++;
        m->st.reorder_topic = topic;
        m->st.reorder_part = part;
        m->st.reorder_behind_ms = m->last_t - t;
        m->st.reorder_idle_ms = m->now_ms - p->passed_ms;
    }
    p->idle_passed = 0;
    m->last_t = t;
    m->last_topic = topic;
    m->last_part = part;
    m->st.frontier_ms = t;
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
    rs_cpm_pop(m, topic * m->np[0] + part, p);
}

/* Decode the heads of the pending partitions: a valid head goes into the
 * heap, a partition left empty (every message invalid) is in E. */
static void rs_cpm_decode_pending(rs_cpm_t *m) {
    for (int k = 0; k < m->pn; k++) {
        int32_t g = m->pend[k];
        int topic = g >= m->np[0];
        rs_cpm_part_t *p = rs_cpm_part_g(m, g);
        p->pending = 0;
        if (rs_cpm_head(m, topic, g, p)) rs_cpm_heap_push(m, p->key_t, g);
    }
    m->pn = 0;
}

/* The checks of the empty partitions E (have: some partition has a head,
 * the one to merge arrived at `at`): 1 if one of them blocks the merge
 * (the lowest (topic, partition) of those is reported).  Every partition
 * without a head must be idle: at its end for idle_wait since the head to
 * merge arrived (or since it reached its end, if later): a message of it
 * still on its way then is merged out of order only if it arrives more
 * than idle_wait after that head (Kafka Streams' max.task.idle.ms, per
 * message).  When the merge may go on, the partitions of E are marked
 * idle_passed (from now_ms): a message arriving there later may be older
 * than what is merged.  Keeps the lowest member of E in m->emin. */
static int rs_cpm_check_empty(rs_cpm_t *m, int64_t now_ms, int have,
                              int64_t at) {
    int32_t bg = -1, emin = -1;
    for (int k = 0; k < m->en; k++) {
        int32_t g = m->eset[k];
        rs_cpm_part_t *p = rs_cpm_part_g(m, g);
        if (emin < 0 || g < emin) emin = g;
        if (p->eof) {
            if (!have) { p->done_once = 1; continue; }
            if (!m->conf.idle_wait_ms ||
                now_ms - RS_MAX(at, p->eof_ms) >= m->conf.idle_wait_ms) {
                p->done_once = 1;
                continue; /* idle: the merge goes on without it */
            }
        }
        /* unknown: its next message may be older */
        if (bg < 0 || g < bg) bg = g;
    }
    m->emin = emin;
    if (bg >= 0) {
        m->st.blocked_topic = bg >= m->np[0];
        m->st.blocked_part = bg - (m->st.blocked_topic ? m->np[0] : 0);
        return 1;
    }
    if (have)
        for (int k = 0; k < m->en; k++) {
            rs_cpm_part_t *p = rs_cpm_part_g(m, m->eset[k]);
            if (!p->idle_passed) {
                p->idle_passed = 1;
                p->passed_ms = now_ms;
            }
        }
    return 0;
}

int rs_cpm_step(rs_cpm_t *m, int64_t now_ms, int max) {
    int n = 0;
    m->now_ms = now_ms;
    m->st.blocked_topic = -1;
    m->edirty = 1; /* the clock and the eof flags moved since the last */
    while (n < max) {
        rs_cpm_decode_pending(m);
        int have = m->hn > 0;
        int32_t g = have ? m->heap[0].g : -1;
        rs_cpm_part_t *p = have ? rs_cpm_part_g(m, g) : NULL;
        int64_t at = have ? p->q[p->qhead].at_ms : 0;
        if (m->en) {
            if (m->edirty) {
                if (rs_cpm_check_empty(m, now_ms, have, at)) return n;
                m->edirty = 0;
            } else if (m->conf.idle_wait_ms &&
                       now_ms - at < m->conf.idle_wait_ms) {
                /* E unchanged since its last check in this step, which let
                 * the merge go on: every member is at its end since
                 * idle_wait (same clock, same flags, marks and done_once
                 * set); only this head's arrival is new, and too recent:
                 * every member holds it back, the lowest is reported */
                m->st.blocked_topic = m->emin >= m->np[0];
                m->st.blocked_part = m->emin - (m->st.blocked_topic ? m->np[0] : 0);
                return n;
            }
        }
        if (!have) return n;
        rs_cpm_heap_pop(m);
        int topic = g >= m->np[0];
        int32_t part = g - (topic ? m->np[0] : 0);
        rs_cpm_apply(m, topic, part);
        if (p->qn) rs_cpm_pend_add(m, g, p); /* its next head */
        n++;
    }
    return n;
}

int rs_cpm_caught_up(const rs_cpm_t *m) {
    for (int t = 0; t < 2; t++)
        for (int32_t i = 0; i < m->np[t]; i++)
            if (!m->p[t][i].done_once) return 0;
    return 1;
}

void rs_cpm_stats(const rs_cpm_t *m, rs_cpm_stats_t *st) { *st = m->st; }

void rs_cpm_store_stats(const rs_cpm_t *m, rs_features_stats_t *st) {
    rs_features_stats(m->store, st);
}
