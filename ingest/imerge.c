/* imerge.c -- the scoring consumer's per-task merge (imerge.h).
 *
 * Invariants (per task, both topics assigned, core = rs_tmerge_t of 2
 * inputs):
 *  - core EMPTY  <=> the queue is empty and pend == 0;
 *  - core PENDING <=> pend == 1 (the queue's head is not keyed yet: it is
 *    keyed, or rejects at the head are handed out, at the next run);
 *  - core HEAD   <=> the queue's head (never a reject) is keyed;
 *  - the core's end flag is the task's eof[] (set by PARTITION_EOF or the
 *    watermark callback, cleared by a push).
 * A task with one topic assigned has no core: FIFO.
 */
#include "ingest/imerge.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/tmerge.h"

#define RS_IM_CHUNK 256

typedef struct rs_im_ent_s {
    rs_msg_t *m;
    int64_t at_ms;
} rs_im_ent_t;

typedef struct rs_im_q_s {
    rs_im_ent_t *e;           /* [cap] ring                               */
    uint32_t cap, head, n;
} rs_im_q_t;

typedef struct rs_im_task_s {
    rs_tmerge_t *tm;          /* both topics assigned: the core, else NULL */
    rs_im_q_t q[2];           /* [RS_MSG_TOPIC_*]                         */
    uint8_t assigned[2];
    uint8_t eof[2];
    uint8_t pend[2];          /* core PENDING: head to key               */
    uint8_t over[2];          /* reported over hold_max (paused)          */
    int64_t eof_ms[2];
    int64_t next_off[2];      /* one past the last pushed offset, -1      */
    int active;               /* on the active list                       */
} rs_im_task_t;

struct rs_imerge_s {
    int64_t idle_wait_ms;
    uint32_t hold_max;
    rs_imerge_end_cb_t *end_cb;
    void *opaque;
    rs_im_task_t *t;          /* [ntask] by partition                     */
    int32_t ntask;
    int32_t *act;             /* [ntask] tasks with messages queued       */
    int32_t nact;
    int32_t rr;               /* next active index to serve first         */
    rs_msg_t **chunks;        /* [nchunk] of RS_IM_CHUNK slots            */
    int nchunk;
    rs_msg_t **free;          /* [nchunk * RS_IM_CHUNK] free slots        */
    int nfree;
    rs_msg_t **lent;          /* [nchunk * RS_IM_CHUNK] slots handed out
                               * by rs_imerge_pop_ref, free again at
                               * rs_imerge_reclaim                       */
    int nlent;
    int lending;              /* the pop running hands slots out          */
    int nover;                /* inputs with over set                     */
    rs_imerge_stats_t st;
};

rs_imerge_t *rs_imerge_new(int64_t idle_wait_ms, uint32_t hold_max,
                           rs_imerge_end_cb_t *end_cb, void *opaque) {
    rs_imerge_t *im = rs_calloc(1, sizeof(*im));
    im->idle_wait_ms = idle_wait_ms > 0 ? idle_wait_ms : 0;
    im->hold_max = hold_max ? hold_max : 1;
    im->end_cb = end_cb;
    im->opaque = opaque;
    return im;
}

void rs_imerge_destroy(rs_imerge_t *im) {
    if (!im) return;
    for (int32_t p = 0; p < im->ntask; p++) {
        rs_tmerge_destroy(im->t[p].tm);
        free(im->t[p].q[0].e);
        free(im->t[p].q[1].e);
    }
    free(im->t);
    free(im->act);
    for (int k = 0; k < im->nchunk; k++) free(im->chunks[k]);
    free(im->chunks);
    free(im->free);
    free(im->lent);
    free(im);
}

/* -------------------------------------------------------------- slots */

rs_msg_t *rs_imerge_slot(rs_imerge_t *im) {
    if (!im->nfree) { /* a new chunk (cold: the pool only grows) */
        im->chunks = rs_realloc(im->chunks,
                                (size_t)(im->nchunk + 1) * sizeof(*im->chunks));
        rs_msg_t *c = rs_calloc(RS_IM_CHUNK, sizeof(*c));
        im->chunks[im->nchunk++] = c;
        im->free = rs_realloc(im->free, (size_t)im->nchunk * RS_IM_CHUNK *
                                            sizeof(*im->free));
        im->lent = rs_realloc(im->lent, (size_t)im->nchunk * RS_IM_CHUNK *
                                            sizeof(*im->lent));
        for (int k = RS_IM_CHUNK - 1; k >= 0; k--) im->free[im->nfree++] = &c[k];
    }
    return im->free[--im->nfree];
}

void rs_imerge_unslot(rs_imerge_t *im, rs_msg_t *m) {
    if (m) im->free[im->nfree++] = m;
}

/* -------------------------------------------------------------- tasks */

static rs_im_task_t *rs_im_task(rs_imerge_t *im, int32_t p) {
    if (p < 0) return NULL;
    if (p >= im->ntask) { /* a new partition (cold) */
        int32_t n = im->ntask ? im->ntask : 8;
        while (n <= p) n *= 2;
        im->t = rs_realloc(im->t, (size_t)n * sizeof(*im->t));
        memset(im->t + im->ntask, 0, (size_t)(n - im->ntask) * sizeof(*im->t));
        for (int32_t k = im->ntask; k < n; k++)
            im->t[k].next_off[0] = im->t[k].next_off[1] = -1;
        im->act = rs_realloc(im->act, (size_t)n * sizeof(*im->act));
        im->ntask = n;
    }
    return &im->t[p];
}

static int64_t rs_im_key(const rs_msg_t *m) {
    return m->kind == RS_MSG_EVENT ? m->ev.event_time_ms : m->lb.label_time_ms;
}

/* The core again after the task's assigned topics changed (cold): end
 * flags and queued heads carried over. */
static void rs_im_rebuild(rs_imerge_t *im, rs_im_task_t *t) {
    rs_tmerge_destroy(t->tm);
    t->tm = NULL;
    t->pend[0] = t->pend[1] = 0;
    if (!t->assigned[0] || !t->assigned[1]) return;
    t->tm = rs_tmerge_new(2, im->idle_wait_ms);
    for (int i = 0; i < 2; i++) {
        if (t->eof[i]) rs_tmerge_eof(t->tm, i, 1, t->eof_ms[i]);
        if (t->q[i].n) {
            rs_tmerge_pending(t->tm, i);
            t->pend[i] = 1;
        }
    }
}

static void rs_im_activate(rs_imerge_t *im, int32_t p, rs_im_task_t *t) {
    if (t->active) return;
    t->active = 1;
    im->act[im->nact++] = p;
}

/* The head of t's queue i leaves: its slot is free again, or (handed out
 * by rs_imerge_pop_ref: im->lending) lent until rs_imerge_reclaim. */
static void rs_im_release(rs_imerge_t *im, rs_im_task_t *t, int i) {
    rs_im_q_t *q = &t->q[i];
    rs_msg_t *m = q->e[q->head].m;
    if (im->lending) im->lent[im->nlent++] = m;
    else im->free[im->nfree++] = m;
    q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
    q->n--;
    im->st.held--;
}

int rs_imerge_push(rs_imerge_t *im, rs_msg_t *m, int64_t at_ms) {
    int i = m->topic == RS_MSG_TOPIC_LABELS;
    rs_im_task_t *t = rs_im_task(im, m->partition);
    if (!t) {
        rs_imerge_unslot(im, m);
        return 0;
    }
    if (!t->assigned[i]) { /* a message before its assignment was seen */
        t->assigned[i] = 1;
        rs_im_rebuild(im, t);
    }
    rs_im_q_t *q = &t->q[i];
    if (q->n == q->cap) { /* grow: unwrap into a twice larger ring */
        uint32_t nc = q->cap ? q->cap * 2 : 64;
        rs_im_ent_t *ne = rs_calloc(nc, sizeof(*ne));
        for (uint32_t k = 0; k < q->n; k++)
            ne[k] = q->e[(q->head + k) % q->cap];
        free(q->e);
        q->e = ne;
        q->cap = nc;
        q->head = 0;
    }
    q->e[(q->head + q->n) % q->cap] = (rs_im_ent_t){m, at_ms};
    q->n++;
    t->next_off[i] = m->offset + 1;
    if (t->tm) {
        if (q->n == 1) {
            rs_tmerge_pending(t->tm, i);
            t->pend[i] = 1;
        }
        if (t->eof[i]) rs_tmerge_eof(t->tm, i, 0, 0);
    }
    t->eof[i] = 0;
    rs_im_activate(im, m->partition, t);
    if (++im->st.held > im->st.held_max) im->st.held_max = im->st.held;
    if (q->n >= im->hold_max && !t->over[i]) {
        t->over[i] = 1;
        im->nover++;
        im->st.paused++;
        return 1;
    }
    return 0;
}

void rs_imerge_eof(rs_imerge_t *im, int topic, int32_t partition,
                   int64_t now_ms) {
    int i = topic == RS_MSG_TOPIC_LABELS;
    rs_im_task_t *t = rs_im_task(im, partition);
    if (!t || t->eof[i]) return;
    t->eof[i] = 1;
    t->eof_ms[i] = now_ms;
    if (t->tm) rs_tmerge_eof(t->tm, i, 1, now_ms);
}

void rs_imerge_assign(rs_imerge_t *im, int topic, int32_t partition,
                      int on) {
    int i = topic == RS_MSG_TOPIC_LABELS;
    rs_im_task_t *t = rs_im_task(im, partition);
    if (!t) return;
    while (t->q[i].n) rs_im_release(im, t, i);
    if (t->over[i]) {
        t->over[i] = 0;
        im->nover--;
    }
    t->eof[i] = 0;
    t->next_off[i] = -1;
    t->assigned[i] = (uint8_t)!!on;
    rs_im_rebuild(im, t);
}

/* --------------------------------------------------------------- pop */

/* A slot into the caller's array: what the message's kind uses (imerge.h)
 * -- an event's used fields only, its unused ones zeroed: a decoded
 * event's are zero (the decoders clear the record first), so the event is
 * the slot's field for field, for a fraction of the bytes read (a card
 * event of 2 numeric and 3 categorical fields: ~0.6 of 2.5 KB; the slot
 * was written by a decode worker: its cache lines come from that core). */
static void rs_im_copy(rs_msg_t *out, const rs_msg_t *m) {
    if (m->kind == RS_MSG_LABEL) {
        memcpy(out, m, offsetof(rs_msg_t, ev));
        out->lb = m->lb;
        out->reason[0] = '\0';
        return;
    }
    if (m->kind != RS_MSG_EVENT || m->ev.n_numeric < 0 ||
        m->ev.n_numeric > RS_MAX_NUMERIC || m->ev.n_categ < 0 ||
        m->ev.n_categ > RS_MAX_CATEG) { /* a reject: all of it */
        memcpy(out, m, sizeof(*out));
        return;
    }
    const rs_event_t *e = &m->ev;
    rs_event_t *d = &out->ev;
    size_t nn = (size_t)e->n_numeric, nc = (size_t)e->n_categ;
    memcpy(out, m, offsetof(rs_msg_t, ev) + offsetof(rs_event_t, numeric) +
                       nn * sizeof(e->numeric[0]));
    memset(&d->numeric[nn], 0, (RS_MAX_NUMERIC - nn) * sizeof(e->numeric[0]));
    d->n_categ = e->n_categ;
    memcpy(d->categ, e->categ, nc * sizeof(e->categ[0]));
    memset(&d->categ[nc], 0, (RS_MAX_CATEG - nc) * sizeof(e->categ[0]));
    out->reason[0] = '\0';
}

void rs_imerge_copy(rs_msg_t *out, const rs_msg_t *m) { rs_im_copy(out, m); }

/* Where a pop puts its messages: copies into copy[], or (rs_imerge_pop_ref)
 * the slots' addresses into ref[]. */
typedef struct rs_im_dst_s {
    rs_msg_t *copy;
    const rs_msg_t **ref;
} rs_im_dst_t;

static int rs_im_out(rs_imerge_t *im, rs_im_task_t *t, int i,
                     const rs_im_dst_t *out, int n) {
    const rs_msg_t *m = t->q[i].e[t->q[i].head].m;
    if (out->ref) out->ref[n] = m;
    else rs_im_copy(&out->copy[n], m);
    rs_im_release(im, t, i);
    im->st.merged++;
    return 1;
}

/* Key the PENDING heads of t (rejects at a head go out first); 0 if out
 * is full before that is done. */
static int rs_im_key_heads(rs_imerge_t *im, rs_im_task_t *t,
                           const rs_im_dst_t *out, int max, int *n) {
    for (int i = 0; i < 2; i++) {
        if (!t->pend[i]) continue;
        rs_im_q_t *q = &t->q[i];
        while (q->n && q->e[q->head].m->kind == RS_MSG_REJECT) {
            if (*n >= max) return 0;
            *n += rs_im_out(im, t, i, out, *n);
        }
        t->pend[i] = 0;
        if (q->n)
            rs_tmerge_head(t->tm, i, rs_im_key(q->e[q->head].m),
                           q->e[q->head].at_ms);
        else
            rs_tmerge_empty(t->tm, i);
    }
    return 1;
}

/* Hand out what task p may give, up to max - *n. */
static void rs_im_run(rs_imerge_t *im, int32_t p, rs_im_task_t *t,
                      const rs_im_dst_t *out, int max, int *n,
                      int64_t now_ms) {
    if (!t->tm) { /* one topic assigned: fetch order */
        for (int i = 0; i < 2; i++)
            while (t->q[i].n && *n < max) *n += rs_im_out(im, t, i, out, *n);
        return;
    }
    int checked[2] = {0, 0};
    while (*n < max) {
        if (!rs_im_key_heads(im, t, out, max, n)) return;
        if (*n >= max) return; /* rejects at the heads filled it */
        int g = rs_tmerge_next(t->tm, now_ms);
        if (g < 0) {
            /* blocked by an input with nothing queued that did not say it
             * is at its end: ask the consumer's high watermark, once */
            int b = rs_tmerge_blocked(t->tm);
            if (b < 0 || t->q[b].n || t->eof[b] || checked[b] ||
                !im->end_cb || t->next_off[b] < 0)
                return;
            checked[b] = 1;
            int b_topic = b ? RS_MSG_TOPIC_LABELS : RS_MSG_TOPIC_EVENTS;
            if (!im->end_cb(im->opaque, b_topic, p, t->next_off[b])) return;
            im->st.end_checks++;
            t->eof[b] = 1;
            t->eof_ms[b] = now_ms;
            rs_tmerge_eof(t->tm, b, 1, now_ms);
            continue;
        }
        rs_tmerge_take_t tk;
        rs_tmerge_take(t->tm, g, &tk);
        if (tk.reordered) {
            im->st.reordered++;
            im->st.reorder_topic = g ? RS_MSG_TOPIC_LABELS
                                     : RS_MSG_TOPIC_EVENTS;
            im->st.reorder_part = p;
            im->st.reorder_behind_ms = tk.behind_ms;
            im->st.reorder_late_ms = tk.late_ms;
            im->st.reorder_late_min = tk.late_min;
            if (tk.late_ms > im->st.reorder_late_max_ms)
                im->st.reorder_late_max_ms = tk.late_ms;
            im->st.reorder_late[rs_tmerge_late_bucket(&tk)]++;
        }
        *n += rs_im_out(im, t, g, out, *n);
        if (t->q[g].n) t->pend[g] = 1;
        else rs_tmerge_empty(t->tm, g);
    }
}

static int rs_im_pop(rs_imerge_t *im, const rs_im_dst_t *out, int max,
                     int64_t now_ms) {
    int n = 0;
    int32_t na = im->nact;
    if (!na) return 0;
    /* round robin over the active tasks, from where the last pop stopped */
    int32_t start = im->rr < na ? im->rr : 0, served = 0;
    for (int32_t k = 0; k < na && n < max; k++, served++) {
        int32_t p = im->act[(start + k) % na];
        rs_im_run(im, p, &im->t[p], out, max, &n, now_ms);
    }
    /* drop the tasks left empty (keep the others' order) */
    int32_t w = 0;
    for (int32_t k = 0; k < na; k++) {
        int32_t p = im->act[k];
        rs_im_task_t *t = &im->t[p];
        if (t->q[0].n || t->q[1].n) im->act[w++] = p;
        else t->active = 0;
    }
    im->nact = w;
    im->rr = w ? (start + served) % w : 0;
    return n;
}

int rs_imerge_pop(rs_imerge_t *im, rs_msg_t *out, int max, int64_t now_ms) {
    rs_im_dst_t dst = {out, NULL};
    return rs_im_pop(im, &dst, max, now_ms);
}

int rs_imerge_pop_ref(rs_imerge_t *im, const rs_msg_t **out, int max,
                      int64_t now_ms) {
    rs_im_dst_t dst = {NULL, out};
    im->lending = 1;
    int n = rs_im_pop(im, &dst, max, now_ms);
    im->lending = 0;
    return n;
}

void rs_imerge_reclaim(rs_imerge_t *im) {
    while (im->nlent) im->free[im->nfree++] = im->lent[--im->nlent];
}

int rs_imerge_lent(const rs_imerge_t *im) { return im->nlent; }

void rs_imerge_resume(rs_imerge_t *im, int all, rs_imerge_resume_cb_t *cb,
                      void *opaque) {
    if (!im->nover) return;
    for (int32_t p = 0; p < im->ntask; p++)
        for (int i = 0; i < 2; i++) {
            rs_im_task_t *t = &im->t[p];
            if (!t->over[i] || (!all && t->q[i].n > im->hold_max / 2))
                continue;
            t->over[i] = 0;
            im->nover--;
            if (cb) cb(opaque, i ? RS_MSG_TOPIC_LABELS : RS_MSG_TOPIC_EVENTS, p);
        }
}

uint32_t rs_imerge_held(const rs_imerge_t *im, int topic, int32_t partition) {
    if (partition < 0 || partition >= im->ntask) return 0;
    return im->t[partition].q[topic == RS_MSG_TOPIC_LABELS].n;
}

void rs_imerge_stats(const rs_imerge_t *im, rs_imerge_stats_t *st) {
    *st = im->st;
}
