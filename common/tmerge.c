/* tmerge.c -- the ordering core of a time-ordered merge (tmerge.h).
 *
 * Factored out of the counterparty stage's merge (scoring/cpstage_merge.c,
 * whose tests -- test_cpstage, test_merge_order_reference -- compare it
 * with a plain scan of every head) so that the scoring consumer's per-task
 * merge (ingest/ingest.c) makes the same decisions.
 *
 * Invariants:
 *  - an input is in exactly one of: the heap (HEAD), the set E (EMPTY),
 *    neither (PENDING);
 *  - the heap orders by (key_t, input), the order of a scan of every head
 *    with ties to the lower index;
 *  - so with every message there the merge hands them out in the order
 *    of (pm_t, input), pm_t the running max of the keys of the input up
 *    to the message (each input's own order kept); top1/top2 are the two
 *    inputs with the largest (pm_t, input) taken, so "a head of another
 *    input that sorts after this one was taken" is one comparison;
 *  - the checks of E (idle or blocking) are done again only
 *    when E changed, the clock moved or an end flag changed (edirty); in
 *    between only the next head's arrival is compared with idle_wait.
 */
#include "common/tmerge.h"

#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"

enum { RS_TM_EMPTY = 0, RS_TM_PEND = 1, RS_TM_HEAD = 2 };

typedef struct rs_tm_in_s {
    int state;                /* RS_TM_*                                  */
    int64_t key_t;            /* HEAD: its time key                       */
    int64_t at_ms;            /* HEAD: its arrival                        */
    int eof;                  /* at its end                               */
    int64_t eof_ms;           /* ... since                                */
    int64_t pm_t;             /* the largest key taken from it (INT64_MIN:
                               * none): the merge hands its messages out
                               * in the order of this running max         */
    int done_once;            /* found at its end and empty once          */
    int32_t epos;             /* index in E, -1: not in it                */
} rs_tm_in_t;

typedef struct rs_tm_hent_s {
    int64_t key_t;
    int32_t i;
} rs_tm_hent_t;

struct rs_tmerge_s {
    int n;
    int64_t idle_wait_ms;
    rs_tm_in_t *in;           /* [n]                                      */
    rs_tm_hent_t *heap;       /* [n] min-heap of the heads                */
    int hn;
    int32_t *eset;            /* [n] E, unordered                         */
    int en;
    int edirty;               /* E, the clock or a flag changed           */
    int32_t emin;             /* lowest member of E at its last check     */
    int npend;                /* inputs PENDING                           */
    int64_t now_ms;           /* the clock of the last rs_tmerge_next     */
    int64_t last_t;           /* the last head taken: (key, input)        */
    int32_t last_i;
    int32_t top1, top2;       /* the inputs with the largest and second
                               * largest (pm_t, input), -1: none          */
    int blocked;
    /* late_ms: the heads that advanced the frontier (key, input, arrival),
     * a ring used as a stack: keys increase from bottom to top and so do
     * arrivals (a head that arrived no later than the top replaces it:
     * the earliest arrival of the heads ordered after any key is then the
     * first entry above it); the bottom is dropped when full. */
    struct {
        int64_t key_t, at_ms;
        int32_t i;
    } late[RS_TMERGE_LATE];
    int lbot, ln;
    int64_t ldrop_t;          /* the last entry dropped at the bottom     */
    int32_t ldrop_i;          /* (-1: none)                               */
};

rs_tmerge_t *rs_tmerge_new(int n, int64_t idle_wait_ms) {
    rs_tmerge_t *m = rs_calloc(1, sizeof(*m));
    m->n = n > 0 ? n : 0;
    m->idle_wait_ms = idle_wait_ms > 0 ? idle_wait_ms : 0;
    m->in = rs_calloc((size_t)m->n + 1, sizeof(*m->in));
    m->heap = rs_calloc((size_t)m->n + 1, sizeof(*m->heap));
    m->eset = rs_calloc((size_t)m->n + 1, sizeof(*m->eset));
    for (int i = 0; i < m->n; i++) { /* every input starts empty */
        m->in[i].epos = m->en;
        m->eset[m->en++] = i;
        m->in[i].pm_t = INT64_MIN;
    }
    m->top1 = m->top2 = -1;
    m->edirty = 1;
    m->now_ms = INT64_MIN;
    m->last_t = INT64_MIN;
    m->last_i = -1;
    m->blocked = -1;
    m->ldrop_i = -1;
    return m;
}

void rs_tmerge_destroy(rs_tmerge_t *m) {
    if (!m) return;
    free(m->in);
    free(m->heap);
    free(m->eset);
    free(m);
}

/* ------------------------------------------------------------- sets */

static void rs_tm_eset_add(rs_tmerge_t *m, int32_t i) {
    m->in[i].epos = m->en;
    m->eset[m->en++] = i;
    m->edirty = 1;
}

static void rs_tm_eset_del(rs_tmerge_t *m, int32_t i) {
    int32_t k = m->in[i].epos, last = m->eset[--m->en];
    m->eset[k] = last;
    m->in[last].epos = k;
    m->in[i].epos = -1;
    m->edirty = 1;
}

static int rs_tm_hless(const rs_tm_hent_t *a, const rs_tm_hent_t *b) {
    return a->key_t < b->key_t || (a->key_t == b->key_t && a->i < b->i);
}

static void rs_tm_heap_push(rs_tmerge_t *m, int64_t key_t, int32_t i) {
    rs_tm_hent_t e = {key_t, i};
    int k = m->hn++;
    while (k > 0) {
        int up = (k - 1) / 2;
        if (!rs_tm_hless(&e, &m->heap[up])) break;
        m->heap[k] = m->heap[up];
        k = up;
    }
    m->heap[k] = e;
}

static void rs_tm_heap_pop(rs_tmerge_t *m) {
    rs_tm_hent_t e = m->heap[--m->hn];
    int k = 0;
    for (;;) {
        int c = 2 * k + 1;
        if (c >= m->hn) break;
        if (c + 1 < m->hn && rs_tm_hless(&m->heap[c + 1], &m->heap[c])) c++;
        if (!rs_tm_hless(&m->heap[c], &e)) break;
        m->heap[k] = m->heap[c];
        k = c;
    }
    if (m->hn) m->heap[k] = e;
}

/* ------------------------------------------------------------ inputs */

void rs_tmerge_head(rs_tmerge_t *m, int i, int64_t key_t, int64_t at_ms) {
    if (i < 0 || i >= m->n) return;
    rs_tm_in_t *p = &m->in[i];
    if (p->state == RS_TM_HEAD) return;
    if (p->state == RS_TM_EMPTY) rs_tm_eset_del(m, i);
    else m->npend--;
    p->state = RS_TM_HEAD;
    p->key_t = key_t;
    p->at_ms = at_ms;
    rs_tm_heap_push(m, key_t, i);
}

void rs_tmerge_pending(rs_tmerge_t *m, int i) {
    if (i < 0 || i >= m->n || m->in[i].state != RS_TM_EMPTY) return;
    rs_tm_eset_del(m, i);
    m->in[i].state = RS_TM_PEND;
    m->npend++;
}

void rs_tmerge_empty(rs_tmerge_t *m, int i) {
    if (i < 0 || i >= m->n || m->in[i].state != RS_TM_PEND) return;
    m->in[i].state = RS_TM_EMPTY;
    m->npend--;
    rs_tm_eset_add(m, i);
}

void rs_tmerge_eof(rs_tmerge_t *m, int i, int at_end, int64_t now_ms) {
    if (i < 0 || i >= m->n) return;
    rs_tm_in_t *p = &m->in[i];
    if (at_end && !p->eof) p->eof_ms = now_ms;
    if (p->eof != !!at_end) m->edirty = 1;
    p->eof = !!at_end;
}

/* ------------------------------------------------------------- merge */

/* The checks of the empty inputs E (have: some input has a head, the one
 * to take arrived at `at`): 1 if one of them blocks the merge (the lowest
 * is reported).  Every input without a head must be idle: at its end for
 * idle_wait since the head to take arrived (or since it reached its end,
 * if later): a message of it still on its way is then taken out of order
 * only if it arrives more than idle_wait after that head (Kafka Streams'
 * max.task.idle.ms, per message).  When the merge may go on, the inputs
 * of E are passed: a message arriving there later may be older than what
 * is taken (rs_tmerge_take counts it).  Keeps E's lowest in m->emin. */
static int rs_tm_check_empty(rs_tmerge_t *m, int64_t now_ms, int have,
                             int64_t at) {
    int32_t bi = -1, emin = -1;
    for (int k = 0; k < m->en; k++) {
        int32_t i = m->eset[k];
        rs_tm_in_t *p = &m->in[i];
        if (emin < 0 || i < emin) emin = i;
        if (p->eof) {
            if (!have) { p->done_once = 1; continue; }
            if (!m->idle_wait_ms ||
                now_ms - RS_MAX(at, p->eof_ms) >= m->idle_wait_ms) {
                p->done_once = 1;
                continue; /* idle: the merge goes on without it */
            }
        }
        /* unknown: its next message may be older */
        if (bi < 0 || i < bi) bi = i;
    }
    m->emin = emin;
    if (bi >= 0) {
        m->blocked = bi;
        return 1;
    }
    return 0;
}

int rs_tmerge_next(rs_tmerge_t *m, int64_t now_ms) {
    m->blocked = -1;
    if (now_ms != m->now_ms) m->edirty = 1;
    m->now_ms = now_ms;
    if (m->npend) { /* a head not keyed yet: its time is unknown */
        for (int i = 0; i < m->n; i++)
            if (m->in[i].state == RS_TM_PEND) {
                m->blocked = i;
                break;
            }
        return -1;
    }
    int have = m->hn > 0;
    int32_t i = have ? m->heap[0].i : -1;
    int64_t at = have ? m->in[i].at_ms : 0;
    if (m->en) {
        if (m->edirty) {
            if (rs_tm_check_empty(m, now_ms, have, at)) return -1;
            m->edirty = 0;
        } else if (m->idle_wait_ms && now_ms - at < m->idle_wait_ms) {
            /* E unchanged since its last check at this clock, which let
             * the merge go on: every member is at its end since idle_wait
             * (marks and done_once set); only this head's arrival is new,
             * and too recent: every member holds it back, the lowest is
             * reported */
            m->blocked = m->emin;
            return -1;
        }
    }
    return have ? i : -1;
}

/* ------------------------------------------------------------ late */

static int rs_tm_after(int64_t ka, int32_t ia, int64_t kb, int32_t ib) {
    return ka > kb || (ka == kb && ia > ib);
}

#define RS_TM_LAT(m, k) ((m)->late[((m)->lbot + (k)) % RS_TMERGE_LATE])

/* A head taken in order, keyed (pm_t, input): on the stack if it
 * advances the high mark. */
static void rs_tm_late_push(rs_tmerge_t *m, int64_t t, int32_t i, int64_t at) {
    if (m->ln && !rs_tm_after(t, i, RS_TM_LAT(m, m->ln - 1).key_t,
                              RS_TM_LAT(m, m->ln - 1).i))
        return; /* not past the high mark: the top is its input's (pm_t) */
    while (m->ln && RS_TM_LAT(m, m->ln - 1).at_ms >= at) m->ln--;
    if (m->ln == RS_TMERGE_LATE) {
        m->ldrop_t = RS_TM_LAT(m, 0).key_t;
        m->ldrop_i = RS_TM_LAT(m, 0).i;
        m->lbot = (m->lbot + 1) % RS_TMERGE_LATE;
        m->ln--;
    }
    RS_TM_LAT(m, m->ln).key_t = t;
    RS_TM_LAT(m, m->ln).i = i;
    RS_TM_LAT(m, m->ln).at_ms = at;
    m->ln++;
}

/* A reordered head keyed (t, i) = (pm_t, input) that arrived at `at`:
 * late_ms from the first entry ordered after it (the earliest arrival of
 * the heads ahead). */
static void rs_tm_late(rs_tmerge_t *m, int64_t t, int32_t i, int64_t at,
                       rs_tmerge_take_t *r) {
    for (int k = 0; k < m->ln; k++)
        if (rs_tm_after(RS_TM_LAT(m, k).key_t, RS_TM_LAT(m, k).i, t, i)) {
            int64_t d = at - RS_TM_LAT(m, k).at_ms;
            r->late_ms = d > 0 ? d : 0;
            r->late_min = k == 0 && m->ldrop_i >= 0 &&
                          rs_tm_after(m->ldrop_t, m->ldrop_i, t, i);
            return;
        }
}

void rs_tmerge_take(rs_tmerge_t *m, int i, rs_tmerge_take_t *tk) {
    if (i < 0 || i >= m->n || m->in[i].state != RS_TM_HEAD) return;
    rs_tm_in_t *p = &m->in[i];
    /* the heap's top is i (rs_tmerge_next); any other: remove by rebuild */
    if (m->hn && m->heap[0].i == i) {
        rs_tm_heap_pop(m);
    } else {
        int k = 0;
        while (k < m->hn && m->heap[k].i != i) k++;
        if (k < m->hn) {
            m->heap[k] = m->heap[--m->hn];
            rs_tm_hent_t *h = m->heap;
            int hn = m->hn;
            m->hn = 0;
            for (int j = 0; j < hn; j++) rs_tm_heap_push(m, h[j].key_t, h[j].i);
        }
    }
    int64_t t = p->key_t;
    rs_tmerge_take_t r = {t, 0, 0, 0, 0};
    /* A merge by heads hands each input's messages out in its own order,
     * so, everything there, in the order of (the running max of its
     * input's keys, input).  Reordered: taken after a head of another
     * input that sorts after it in that order -- only an input the merge
     * passed as idle can bring that, and every message of a late batch
     * below what went ahead counts, not only the first. */
    int64_t pm = p->pm_t > t ? p->pm_t : t;
    int32_t o = m->top1 != i ? m->top1 : m->top2;
    if (o >= 0 && rs_tm_after(m->in[o].pm_t, o, pm, i)) {
        r.reordered = 1;
        r.behind_ms = m->in[o].pm_t - t;
        rs_tm_late(m, pm, i, p->at_ms, &r);
    } else {
        rs_tm_late_push(m, pm, i, p->at_ms);
    }
    p->pm_t = pm;
    /* the two largest (pm_t, input): pm_t only grows */
    if (m->top1 != i) {
        if (m->top1 < 0 ||
            rs_tm_after(pm, i, m->in[m->top1].pm_t, m->top1)) {
            m->top2 = m->top1;
            m->top1 = i;
        } else if (m->top2 != i &&
                   (m->top2 < 0 ||
                    rs_tm_after(pm, i, m->in[m->top2].pm_t, m->top2))) {
            m->top2 = i;
        }
    }
    m->last_t = t;
    m->last_i = i;
    p->state = RS_TM_PEND;
    m->npend++;
    if (tk) *tk = r;
}

int rs_tmerge_late_bucket(const rs_tmerge_take_t *tk) {
    if (tk->late_min) return RS_TMERGE_LATE_BUCKETS - 1; /* unknown */
    int b = 0;
    while (b < RS_TMERGE_LATE_BUCKETS - 1 && ((int64_t)1 << b) <= tk->late_ms)
        b++;
    return b;
}

void rs_tmerge_late_advice(const char *key, const uint64_t *bk, uint64_t n,
                           char *buf, size_t size) {
    static const double pct[] = {50, 90, 99, 100};
    const int nb = RS_TMERGE_LATE_BUCKETS - 1; /* the last: unknown */
    size_t o = 0;
    uint64_t cum = 0;
    int next = 0, listed = 0, last = -1; /* the last bucket with any */
    if (!size) return;
    buf[0] = 0;
    if (!n) return;
    for (int b = 0; b < nb; b++)
        if (bk[b]) last = b;
    if (last >= 0) o += (size_t)snprintf(buf, size, "%s", key);
    for (int b = 0; b <= last && o < size; b++) {
        cum += bk[b];
        /* rounded down: "100.0 %" only for all of them */
        double p = floor(1000.0 * (double)cum / (double)n) / 10.0;
        /* the first wait past each of pct, and the longest known */
        if (!bk[b] || (p < pct[next] && b < last)) continue;
        while (next < 3 && p >= pct[next]) next++;
        if (cum == n)
            o += (size_t)snprintf(buf + o, size - o, "%s %lldms: all",
                                  listed ? "," : "", (long long)1 << b);
        else
            o += (size_t)snprintf(buf + o, size - o, "%s %lldms: %.1f %%",
                                  listed ? "," : "", (long long)1 << b, p);
        listed++;
    }
    if (cum < n && o < size)
        snprintf(buf + o, size - o, "%s%llu later than %lld ms or by more "
                 "than the merge remembers", listed ? "; " : "",
                 (unsigned long long)(n - cum),
                 (long long)1 << (nb - 1));
}

int rs_tmerge_log_step(rs_tmerge_log_t *lg, const uint64_t *late,
                       uint64_t reordered, int64_t now_us, int64_t every_us,
                       const char *key, char *adv, size_t size, uint64_t *n,
                       int64_t *secs) {
    int what = 0;
    if (reordered <= lg->logged) return 0;
    if (!lg->warned) {
        lg->warned = 1;
        what = 1;
    } else {
        if (now_us < lg->next_us) return 0;
        uint64_t d[RS_TMERGE_LATE_BUCKETS];
        for (int b = 0; b < RS_TMERGE_LATE_BUCKETS; b++)
            d[b] = late[b] - lg->late_logged[b];
        *n = reordered - lg->logged;
        rs_tmerge_late_advice(key, d, *n, adv, size);
        *secs = (now_us - lg->next_us + every_us) / 1000000;
        what = 2;
    }
    lg->next_us = now_us + every_us;
    lg->logged = reordered;
    memcpy(lg->late_logged, late, sizeof(lg->late_logged));
    return what;
}

int rs_tmerge_blocked(const rs_tmerge_t *m) { return m->blocked; }

int rs_tmerge_done_once(const rs_tmerge_t *m, int i) {
    return i >= 0 && i < m->n && m->in[i].done_once;
}

int64_t rs_tmerge_frontier(const rs_tmerge_t *m) { return m->last_t; }

int rs_tmerge_has_head(const rs_tmerge_t *m, int i) {
    return i >= 0 && i < m->n && m->in[i].state == RS_TM_HEAD;
}
