/* alerts.c -- predictive maintenance in the service (see alerts.h).
 *
 * Invariants:
 *  - q[0..nq) are the batch's labels in message order; q_next is the first
 *    not yet applied.  rs_alerts_score(i) applies every q entry with
 *    index < i before the reading at i, rs_alerts_batch_end the rest.
 *  - A machine's entry (mach) tracks its last reading applied here; its
 *    `failed` flag is set by an applied failure and cleared by its next
 *    reading: a failure label while it is set is the same failure.
 *  - pay_len[p] is valid for p < npub of the current batch.
 *  - A machine with a report waiting (pend_*) or queued (queued) is not
 *    idle: the report is applied at its last reading.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/coldstart.h"
#include "model/rul.h"
#include "scoring/alerts.h"

#define RS_ALERTS_PAYLOAD_MAX 2048 /* bytes of one alert payload          */
#define RS_ALERTS_DRIFTING 3       /* sensors named in a payload          */
#define RS_ALERTS_PARTS 4096       /* input partitions with a watermark   */
#define RS_AL_SWEEP_STEP 4         /* machine slots checked for idleness
                                    * per event                           */

typedef struct rs_al_mach_s {
    uint64_t key;            /* machine hash; 0 = free                    */
    int64_t last_t;          /* event time of its last reading            */
    int32_t partition;       /* input partition of its last reading       */
    uint8_t failed;          /* a failure applied since its last reading  */
    uint8_t pend_fail;       /* a failure report waits for event time     */
    uint8_t pend_rep;        /* a repair report waits for event time      */
    uint8_t queued;          /* its reports queued in this batch, not yet
                              * applied (saturates at 255)               */
} rs_al_mach_t;

/* A report waiting until the event time of its machine's partition
 * reaches its label time (per partition, a list in label-time order). */
typedef struct rs_al_pend_s {
    rs_label_t lb;
    int32_t next;            /* next in its partition's list, or -1       */
    int32_t pad_;
} rs_al_pend_t;

typedef struct rs_al_label_s {
    int i;                   /* message index in the batch                */
    rs_label_t lb;
} rs_al_label_t;

struct rs_alerts_s {
    rs_maint_conf_t mc;
    rs_features_t *feat;
    const rs_model_t *scorer;
    rs_trainer_t *tr;
    rs_alertpol_t *pol;
    rs_rul_t *rul;           /* the trainer's RUL head as of its last
                              * version (NULL: maintenance.rul off)       */
    uint64_t rul_seen;       /* its copy count (rs_trainer_rul)           */
    rs_coldstart_t *cs;      /* maintenance.cold_start (NULL: off), with
                              * the model's own policy, whose lead times
                              * at failures are its record (coldstart.h) */
    int dim;
    const char **names;      /* [dim] feature names (the engine's)        */

    rs_al_mach_t *tab;       /* [mask + 1] open addressing; deletion by
                              * backward shift (rs_alerts_part_drop,
                              * idle machines)                           */
    uint32_t mask;
    uint64_t nmach;
    int64_t ttl;             /* opts.key_ttl: idle machines go (0: never) */
    uint32_t sweep;          /* next slot the idleness sweep checks       */
    uint64_t *gone_key;      /* [gone_cap] machines forgotten as idle since
                              * the last rs_alerts_gone_take (tracking on) */
    int32_t *gone_part;      /* [gone_cap] their partitions               */
    int ngone, gone_cap, track_gone;
    uint64_t gone_lost;

    int batch_max;
    rs_al_label_t *q;        /* [2 batch_max] the batch's labels          */
    int nq, q_next;
    char *pay;               /* [batch_max][RS_ALERTS_PAYLOAD_MAX]        */
    int *pay_len;            /* [batch_max]                               */
    int npub;

    rs_al_pend_t *pend;      /* [max_machines] waiting reports            */
    int32_t pfree;           /* free list of pend                         */
    int32_t *phead, *ptail;  /* [RS_ALERTS_PARTS] lists by partition      */
    int64_t *wm;             /* [RS_ALERTS_PARTS] event time of each input
                              * partition's readings                      */

    rs_alerts_dirty_t *dirty; /* [dirty_cap] machines a report changed
                              * since the last rs_alerts_dirty_take      */
    int ndirty, dirty_cap;
    uint64_t dirty_lost;

    int (*foreign)(void *o, int32_t p); /* standby copies' partitions
                              * (rs_alerts_set_foreign; NULL: none)      */
    void *foreign_o;

    rs_alerts_stats_t st;    /* scoring thread                            */
    pthread_mutex_t lock;
    rs_alerts_stats_t snap;  /* under lock                                */
};

/* ------------------------------------------------------------ create */

rs_alerts_t *rs_alerts_new(const rs_maint_conf_t *mc,
                           const rs_alerts_opts_t *opts, rs_features_t *feat,
                           const rs_model_t *scorer, rs_trainer_t *tr,
                           char *errstr, size_t errstr_size) {
    if (!mc || !mc->enabled || !opts || opts->batch_max < 1 || !feat ||
        !tr) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "maintenance: alerts need maintenance.enabled, a batch size, "
                "the feature engine and the trainer");
        return NULL;
    }
    rs_alertpol_t *pol = rs_alertpol_new(mc, errstr, errstr_size);
    if (!pol) return NULL;
    rs_alerts_t *al = rs_calloc(1, sizeof(*al));
    al->mc = *mc;
    al->feat = feat;
    al->scorer = scorer;
    al->tr = tr;
    al->pol = pol;
    al->dim = rs_features_dim(feat);
    al->names = rs_calloc((size_t)al->dim + 1, sizeof(*al->names));
    for (int i = 0; i < al->dim; i++) al->names[i] = rs_features_name(feat, i);
    uint64_t n = 1;
    while (n < (uint64_t)mc->max_machines * 2) n <<= 1;
    al->mask = (uint32_t)(n - 1);
    al->tab = rs_calloc(n, sizeof(*al->tab));
    al->batch_max = opts->batch_max;
    al->q = rs_calloc(2 * (size_t)opts->batch_max, sizeof(*al->q));
    int32_t np = (int32_t)(mc->max_machines < INT32_MAX ? mc->max_machines
                                                        : INT32_MAX);
    al->pend = rs_calloc((size_t)np, sizeof(*al->pend));
    for (int32_t k = 0; k < np; k++) al->pend[k].next = k + 1 < np ? k + 1 : -1;
    al->pfree = 0;
    al->phead = rs_malloc(RS_ALERTS_PARTS * sizeof(*al->phead));
    al->ptail = rs_malloc(RS_ALERTS_PARTS * sizeof(*al->ptail));
    al->wm = rs_malloc(RS_ALERTS_PARTS * sizeof(*al->wm));
    for (int k = 0; k < RS_ALERTS_PARTS; k++) {
        al->phead[k] = al->ptail[k] = -1;
        al->wm[k] = INT64_MIN;
    }
    al->pay = rs_malloc((size_t)opts->batch_max * RS_ALERTS_PAYLOAD_MAX);
    al->pay_len = rs_calloc((size_t)opts->batch_max, sizeof(*al->pay_len));
    /* every report applied in a batch: at most the queue's 2 batch_max
     * (and those applied directly when it is full) */
    al->dirty_cap = 4 * opts->batch_max;
    al->dirty = rs_calloc((size_t)al->dirty_cap, sizeof(*al->dirty));
    /* machines forgotten as idle in a batch: at most the sweep's steps
     * and one lookup per message (2 batch_max labels and events) */
    al->ttl = opts->key_ttl > 0 ? opts->key_ttl : 0;
    al->gone_cap = (RS_AL_SWEEP_STEP + 2) * opts->batch_max;
    al->gone_key = rs_calloc((size_t)al->gone_cap, sizeof(*al->gone_key));
    al->gone_part = rs_calloc((size_t)al->gone_cap, sizeof(*al->gone_part));
    if (mc->rul) {
        al->rul = rs_rul_new(al->dim, rs_maint_rul_cap(mc));
        rs_trainer_rul(tr, al->rul, &al->rul_seen);
    }
    if (mc->cold_start) {
        al->cs = rs_coldstart_new(al->names, al->dim, mc->alert_threshold);
        /* the conf passed rs_alertpol_new above */
        rs_coldstart_track(al->cs, mc, errstr, errstr_size);
    }
    rs_hist_init(&al->st.leads);
    al->snap = al->st;
    pthread_mutex_init(&al->lock, NULL);
    return al;
}

void rs_alerts_destroy(rs_alerts_t *al) {
    if (!al) return;
    rs_alertpol_destroy(al->pol);
    rs_rul_destroy(al->rul);
    rs_coldstart_destroy(al->cs);
    pthread_mutex_destroy(&al->lock);
    free(al->names);
    free(al->tab);
    free(al->q);
    free(al->pend);
    free(al->phead);
    free(al->ptail);
    free(al->wm);
    free(al->pay);
    free(al->pay_len);
    free(al->dirty);
    free(al->gone_key);
    free(al->gone_part);
    free(al);
}

/* ----------------------------------------------------------- machines */

/* The machine's entry; created if `add` (NULL when the table is full). */
static rs_al_mach_t *rs_al_mach(rs_alerts_t *al, uint64_t key, int add) {
    if (!key) key = 1;
    uint32_t i = (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & al->mask;
    for (uint32_t probe = 0; probe <= al->mask;
         probe++, i = (i + 1) & al->mask) {
        rs_al_mach_t *m = &al->tab[i];
        if (m->key == key) return m;
        if (!m->key) {
            if (!add || al->nmach >= (uint64_t)al->mc.max_machines)
                return NULL;
            memset(m, 0, sizeof(*m));
            m->key = key;
            m->last_t = INT64_MIN;
            m->partition = -1;
            al->nmach++;
            return m;
        }
    }
    return NULL;
}

static void rs_al_tab_del(rs_alerts_t *al, uint32_t i);

/* 1 if machine m is idle: no reading for more than key_ttl of its
 * partition's event time (exactly key_ttl is kept, as features.key_ttl
 * keeps a key).  Never while a report of it waits for that event time
 * or is queued in the batch: the report needs its last reading. */
static int rs_al_idle(const rs_alerts_t *al, const rs_al_mach_t *m) {
    if (al->ttl <= 0 || m->last_t == INT64_MIN || m->pend_fail ||
        m->pend_rep || m->queued || m->partition < 0 ||
        m->partition >= RS_ALERTS_PARTS)
        return 0;
    int64_t wm = al->wm[m->partition];
    return wm > m->last_t &&
           (uint64_t)wm - (uint64_t)m->last_t > (uint64_t)al->ttl;
}

/* Forget idle machine entry i: its entries in the three tables (policy,
 * cold start, this side's), remembered for the changelog's tombstone
 * (rs_alerts_gone_take). */
static void rs_al_expire(rs_alerts_t *al, uint32_t i) {
    const rs_al_mach_t *m = &al->tab[i];
    uint64_t key = m->key;
    if (al->track_gone) {
        if (al->ngone < al->gone_cap) {
            al->gone_key[al->ngone] = key;
            al->gone_part[al->ngone++] = m->partition;
        } else {
            al->gone_lost++;
        }
    }
    rs_alertpol_forget(al->pol, key);
    if (al->cs) rs_coldstart_machine_forget(al->cs, key);
    rs_al_tab_del(al, i);
    al->st.expired++;
}

/* The machine's entry if it has a live one: an idle one is forgotten
 * here, so decisions never depend on when the sweep passed. */
static rs_al_mach_t *rs_al_live(rs_alerts_t *al, uint64_t key) {
    rs_al_mach_t *m = rs_al_mach(al, key, 0);
    if (m && rs_al_idle(al, m)) {
        rs_al_expire(al, (uint32_t)(m - al->tab));
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------ labels */

/* A repair: value 0 for the machine itself (event_id = entity_id); the
 * rule is the features' (rs_features_report_kind), shared with the
 * offline replay. */
static int rs_al_is_repair(const rs_label_t *lb) {
    return rs_features_report_kind(lb) == RS_FEATURES_REPORT_REPAIR;
}

/* Queue report lb for the policy and the trainer at message index i of
 * the batch (before the event at i), and start the machine's new life in
 * the features now (the caller's place in the input). */
static void rs_al_due(rs_alerts_t *al, int i, const rs_label_t *lb);

int rs_alerts_label(rs_alerts_t *al, int i, const rs_label_t *lb) {
    rs_features_report_t kind = rs_features_report_kind(lb);
    int repair = kind == RS_FEATURES_REPORT_REPAIR;
    if (kind == RS_FEATURES_REPORT_NONE) {
        al->st.ignored++;
        return 1;
    }
    /* Events and labels come on two topics, whose consumption is not
     * ordered: a report may arrive before the machine's last readings
     * before it.  It waits until the event time of the machine's input
     * partition reaches its label time, so it lands after every reading
     * before the report (the machine's failure is placed at the last). */
    rs_al_mach_t *m = rs_al_live(al, rs_hash_str(lb->entity_id));
    int32_t p = m ? m->partition : -1;
    if (p < 0 || p >= RS_ALERTS_PARTS || lb->label_time_ms <= al->wm[p]) {
        rs_al_due(al, i, lb); /* in time (or a machine never seen) */
        return 1;
    }
    if (repair ? m->pend_rep : m->pend_fail) {
        /* one waits already: the same report again (or, for a failure, a
         * report of the same failure: the machine read nothing since) */
        al->st.repeated += (uint64_t)!repair;
        return 1;
    }
    if (al->pfree < 0) { /* every slot waits: in time, not in order */
        al->st.unordered++;
        rs_al_due(al, i, lb);
        return 1;
    }
    int32_t k = al->pfree;
    al->pfree = al->pend[k].next;
    al->pend[k].lb = *lb;
    /* insert in label-time order (reports come roughly in order: mostly
     * at the tail) */
    int32_t *at = &al->phead[p], prev = -1;
    if (al->ptail[p] >= 0 &&
        al->pend[al->ptail[p]].lb.label_time_ms <= lb->label_time_ms) {
        prev = al->ptail[p];
        at = &al->pend[prev].next;
    } else {
        while (*at >= 0 &&
               al->pend[*at].lb.label_time_ms <= lb->label_time_ms) {
            prev = *at;
            at = &al->pend[*at].next;
        }
    }
    al->pend[k].next = *at;
    *at = k;
    if (al->pend[k].next < 0) al->ptail[p] = k;
    (void)prev;
    if (repair) m->pend_rep = 1;
    else m->pend_fail = 1;
    al->st.waited++;
    return 1;
}

void rs_alerts_event(rs_alerts_t *al, int i, const rs_event_t *ev,
                     int32_t partition) {
    if (partition < 0 || partition >= RS_ALERTS_PARTS) return;
    if (ev->event_time_ms > al->wm[partition])
        al->wm[partition] = ev->event_time_ms;
    /* idle machines go, a few slots per event (and at their lookup) */
    for (int k = 0; al->ttl > 0 && k < RS_AL_SWEEP_STEP; k++) {
        uint32_t s = al->sweep;
        al->sweep = (s + 1) & al->mask;
        if (al->tab[s].key && rs_al_idle(al, &al->tab[s])) rs_al_expire(al, s);
    }
    int32_t *h = &al->phead[partition];
    while (*h >= 0 && al->pend[*h].lb.label_time_ms <= al->wm[partition]) {
        int32_t k = *h;
        *h = al->pend[k].next;
        if (*h < 0) al->ptail[partition] = -1;
        const rs_label_t *lb = &al->pend[k].lb;
        rs_al_mach_t *m = rs_al_mach(al, rs_hash_str(lb->entity_id), 0);
        if (m) {
            if (rs_al_is_repair(lb)) m->pend_rep = 0;
            else m->pend_fail = 0;
        }
        rs_al_due(al, i, lb);
        al->pend[k].next = al->pfree;
        al->pfree = k;
    }
}

/* A message to the trainer (waits for room: backpressure, as the
 * service's own). */
static void rs_al_train(rs_alerts_t *al, int kind, int32_t partition,
                        const rs_label_t *lb, int64_t t) {
    rs_trainer_msg_t *m;
    int n;
    while (!(m = rs_trainer_reserve(al->tr, 1, &n)))
        rs_trainer_wait_space(al->tr, 10);
    memset(m, 0, sizeof(*m));
    rs_model_stats_t ms;
    rs_model_stats(al->scorer, &ms);
    m->kind = kind;
    m->partition = partition;
    m->t = t;
    m->psi = ms.drift_psi;
    m->lb = *lb;
    rs_trainer_commit(al->tr, 1);
}

/* Apply one queued label: policy, trainer. */
static void rs_al_apply(rs_alerts_t *al, const rs_label_t *lb) {
    uint64_t key = rs_hash_str(lb->entity_id);
    rs_al_mach_t *m = rs_al_live(al, key);
    if (m && m->queued) m->queued--;
    int64_t t = m && m->last_t != INT64_MIN ? m->last_t : 0;
    int32_t part = m ? m->partition : -1;
    /* its partition-local state changed: the changelog writes it with
     * this batch even if no message of the machine is in it */
    if (part >= 0) {
        if (al->ndirty < al->dirty_cap) {
            rs_strlcpy(al->dirty[al->ndirty].machine, lb->entity_id,
                       sizeof(al->dirty[0].machine));
            al->dirty[al->ndirty++].partition = part;
        } else {
            al->dirty_lost++;
        }
    }
    if (rs_al_is_repair(lb)) {
        al->st.repairs++;
        rs_alertpol_reset(al->pol, key);
        if (al->cs) rs_coldstart_repair(al->cs, key);
        rs_al_train(al, RS_TRAINER_REPAIR, part, lb, t);
        if (m) m->failed = 0;
        return;
    }
    if (m && m->failed) { /* no reading since its failure: the same one */
        al->st.repeated++;
        return;
    }
    if (!t) al->st.unplaced++;
    /* caught and lead time as eval counts them (rs_alertpol_lead: from the
     * earlier of the open episode's opening and the first alert within the
     * horizon), read before the failure starts the machine afresh; the
     * policy's own count (its latest episode's alert within the horizon
     * only) missed a failure alerted on, and still in alert, since more
     * than the horizon */
    int64_t t_fail = t ? t : lb->label_time_ms;
    int64_t lead = rs_alertpol_lead(al->pol, key, t_fail);
    if (lead >= 0) {
        al->st.caught++;
        rs_hist_record(&al->st.leads, lead / 1000);
    }
    rs_alertpol_failure(al->pol, key, t_fail, NULL);
    rs_al_train(al, RS_TRAINER_FAILURE, part, lb, t);
    /* the model's record: did its own score catch it? */
    if (al->cs) rs_coldstart_machine_failure(al->cs, key, t ? t : lb->label_time_ms);
    if (m) m->failed = 1;
}

static void rs_al_apply_to(rs_alerts_t *al, int i) {
    while (al->q_next < al->nq && al->q[al->q_next].i <= i)
        rs_al_apply(al, &al->q[al->q_next++].lb);
}

static void rs_al_due(rs_alerts_t *al, int i, const rs_label_t *lb) {
    /* The new life starts here, in input order: the machine's next
     * reading is scored against the fleet.  (A repeated failure report
     * resets a state that has seen no reading since: no change.)  The
     * same call as the offline replay's (`riskstream features`). */
    rs_features_report(al->feat, lb);
    /* kept (not idle) until applied: the report needs its last reading */
    rs_al_mach_t *m = rs_al_mach(al, rs_hash_str(lb->entity_id), 0);
    if (m && m->queued < UINT8_MAX) m->queued++;
    if (al->nq < 2 * al->batch_max) {
        al->q[al->nq].i = i;
        al->q[al->nq].lb = *lb;
        al->nq++;
    } else { /* not expected: at most one per message and per waiting one */
        rs_al_apply_to(al, i);
        rs_al_apply(al, lb);
    }
}

void rs_alerts_batch_end(rs_alerts_t *al) {
    rs_al_apply_to(al, INT32_MAX);
    al->nq = al->q_next = 0;
    al->npub = 0;
    /* the RUL head of the trainer's newest version, between batches */
    if (al->rul) rs_trainer_rul(al->tr, al->rul, &al->rul_seen);
}

/* "14 h", "3.5 h", "45 min", "2.5 days" */
static void rs_al_dur(int64_t ms, char *buf, size_t size) {
    double h = (double)ms / 3600000.0;
    if (h < 1) snprintf(buf, size, "%.0f min", h * 60);
    else if (h < 10) snprintf(buf, size, "%.1f h", h);
    else if (h < 72) snprintf(buf, size, "%.0f h", h);
    else snprintf(buf, size, "%.1f days", h / 24);
}

/* ------------------------------------------------------------ scores */

/* The alert's payload into pay[pub]. */
static void rs_al_payload(rs_alerts_t *al, int pub, const rs_event_t *ev,
                          float score, rs_alertpol_decision_t d,
                          const float *x, int64_t rul_ms,
                          const char *version) {
    int idx[RS_ALERTS_DRIFTING];
    int nd = rs_maint_top_drifting(al->names, x, al->dim, idx,
                                   RS_ALERTS_DRIFTING);
    const char *names[RS_ALERTS_DRIFTING];
    const char *reasons[RS_ALERTS_DRIFTING];
    float values[RS_ALERTS_DRIFTING];
    char why[RS_ALERTS_DRIFTING][256];
    for (int j = 0; j < nd; j++) {
        names[j] = al->names[idx[j]];
        values[j] = x[idx[j]];
        reasons[j] = rs_features_reason(al->feat, idx[j], x, why[j],
                                        sizeof(why[j])) > 0
                         ? why[j]
                         : NULL;
    }
    /* in words: the estimated time to failure, the most drifting sensor */
    char summary[512], ttf[32], cap[32];
    size_t sl = 0;
    summary[0] = '\0';
    if (rul_ms > 0) {
        rs_al_dur(rul_ms, ttf, sizeof(ttf));
        rs_al_dur(rs_rul_cap(al->rul), cap, sizeof(cap));
        sl = (size_t)snprintf(summary, sizeof(summary),
                              rul_ms >= rs_rul_cap(al->rul)
                                  ? "estimated to fail in %s or more "
                                    "(remaining useful life, capped at %s)"
                                  : "estimated to fail in about %s "
                                    "(remaining useful life, capped at %s)",
                              rul_ms >= rs_rul_cap(al->rul) ? cap : ttf, cap);
    }
    if (nd > 0 && reasons[0] && sl < sizeof(summary))
        snprintf(summary + sl, sizeof(summary) - sl, "%s%s", sl ? "; " : "",
                 reasons[0]);
    char *buf = al->pay + (size_t)pub * RS_ALERTS_PAYLOAD_MAX;
    int len = rs_alertpol_payload(buf, RS_ALERTS_PAYLOAD_MAX, ev->entity_id,
                                  ev->id, ev->event_time_ms, score, d,
                                  al->mc.horizon, rul_ms > 0 ? rul_ms : -1,
                                  names, values, reasons, nd,
                                  summary[0] ? summary : NULL, version);
    if (len < 0) { /* not expected (ids and names are bounded) */
        al->st.payload_errors++;
        len = -1;
    }
    al->pay_len[pub] = len;
}

rs_decision_t rs_alerts_score(rs_alerts_t *al, int i, int pub,
                              const rs_event_t *ev, int32_t partition,
                              float score, const float *x,
                              const char *version, int64_t *rul_ms,
                              double *alert_score) {
    rs_al_apply_to(al, i);
    *rul_ms = 0;
    *alert_score = 0;
    if (pub >= 0 && pub < al->batch_max) {
        while (al->npub <= pub) al->pay_len[al->npub++] = 0;
    }
    uint64_t key = rs_hash_str(ev->entity_id);
    rs_al_mach_t *m = rs_al_live(al, key);
    if (!m) m = rs_al_mach(al, key, 1);
    if (m) {
        if (ev->event_time_ms > m->last_t || m->failed)
            m->last_t = ev->event_time_ms;
        m->partition = partition;
        m->failed = 0;
    }
    /* an estimate once the head has learned something */
    if (al->rul && rs_rul_updates(al->rul) > 0)
        *rul_ms = rs_rul_predict(al->rul, x, score);
    /* the policy decides on the model's score blended with the baseline
     * deviation while it learned few failures (coldstart.h) */
    if (al->cs) {
        float blended = rs_coldstart_observe(al->cs, key, ev->event_time_ms,
                                             x, score);
        /* on record next to the model's own score (alerts.h) */
        if (blended != score) *alert_score = blended;
        score = blended;
    }
    rs_alertpol_decision_t d =
        rs_alertpol_step(al->pol, key, ev->event_time_ms, score);
    if (d == RS_ALERTPOL_NONE) return RS_DECISION_APPROVE;
    if (pub >= 0 && pub < al->batch_max)
        rs_al_payload(al, pub, ev, score, d, x, *rul_ms, version);
    return RS_DECISION_ALERT;
}

const char *rs_alerts_payload(const rs_alerts_t *al, int pub, size_t *len) {
    if (pub >= 0 && pub < al->npub && al->pay_len[pub] > 0) {
        *len = (size_t)al->pay_len[pub];
        return al->pay + (size_t)pub * RS_ALERTS_PAYLOAD_MAX;
    }
    if (pub >= 0 && pub < al->npub && al->pay_len[pub] < 0) {
        *len = 0;
        return NULL; /* no payload: the score record goes instead */
    }
    *len = 0;
    return ""; /* a duplicate's (or a non-reading's) record: not an alert */
}

/* ------------------------------------------------------------ metrics */

/* ------------------------------------------------------ checkpoint */

size_t rs_alerts_ckpt_size(const rs_alerts_t *al) {
    return al->cs ? rs_coldstart_state_size(al->cs) : 0;
}

void rs_alerts_ckpt_write(const rs_alerts_t *al, void *buf) {
    if (al->cs) rs_coldstart_save(al->cs, buf);
}

rs_err_t rs_alerts_ckpt_read(rs_alerts_t *al, const void *buf, size_t len,
                             char *errstr, size_t errstr_size) {
    if (!al->cs) return RS_OK; /* cold start off now: nothing to restore */
    rs_err_t err = rs_coldstart_load(al->cs, buf, len, errstr, errstr_size);
    if (err != RS_OK) return err;
    rs_alerts_snapshot(al); /* the metric says so from the start */
    rs_info("maintenance", "cold start: %llu failures learned before "
                "the restart, %llu of them caught early by the model's own "
                "score (the model's weight %.3f)",
                (unsigned long long)rs_coldstart_failures(al->cs),
                (unsigned long long)rs_coldstart_caught(al->cs),
                rs_coldstart_weight(al->cs));
    return err;
}

size_t rs_alerts_table_size(const rs_alerts_t *al) {
    return rs_alertpol_ckpt_size(al->pol);
}

void rs_alerts_table_write(const rs_alerts_t *al, void *buf) {
    rs_alertpol_ckpt_write(al->pol, buf);
}

rs_err_t rs_alerts_table_read(rs_alerts_t *al, const void *buf, size_t len,
                              char *errstr, size_t errstr_size) {
    rs_err_t err = rs_alertpol_ckpt_read(al->pol, buf, len, errstr,
                                         errstr_size);
    if (err != RS_OK) return err;
    rs_alerts_snapshot(al); /* riskstream_alerts_open from the start */
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(al->pol, &ps);
    rs_info("maintenance", "alert policy: %llu machines restored, %llu of "
            "them in an open episode (not alerted again)",
            (unsigned long long)ps.machines, (unsigned long long)ps.open);
    return RS_OK;
}

/* ------------------------------------- partition-local state (alerts.h)
 * Record: u32 magic "RSMP", u32 version 1, u64 machines, then per machine
 * RS_AL_MREC bytes (u64 key, i64 last reading's event time, i32 input
 * partition, u8 failed, u8 has policy entry, u16 0, u32 cold-start bytes,
 * u32 0), the policy's 48-byte entry if any, the cold-start bytes. */

#define RS_AL_PART_MAGIC 0x504d5352u /* "RSMP" */
#define RS_AL_MREC 32

static uint32_t rs_al_home(const rs_alerts_t *al, uint64_t key) {
    return (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & al->mask;
}

/* Machine m's record at o (NULL: size only).  Its bytes. */
static size_t rs_al_mach_put(const rs_alerts_t *al, const rs_al_mach_t *m,
                             char *o) {
    char pe[RS_ALERTPOL_ENTRY];
    uint8_t haspol = (uint8_t)rs_alertpol_entry_save(al->pol, m->key, pe);
    size_t csl = al->cs ? rs_coldstart_machine_save(al->cs, m->key, NULL, 0)
                        : 0;
    size_t n = RS_AL_MREC + (haspol ? RS_ALERTPOL_ENTRY : 0) + csl;
    if (!o) return n;
    memset(o, 0, RS_AL_MREC);
    uint32_t cl = (uint32_t)csl;
    memcpy(o, &m->key, 8);
    memcpy(o + 8, &m->last_t, 8);
    memcpy(o + 16, &m->partition, 4);
    o[20] = (char)m->failed;
    o[21] = (char)haspol;
    memcpy(o + 24, &cl, 4);
    o += RS_AL_MREC;
    if (haspol) {
        memcpy(o, pe, RS_ALERTPOL_ENTRY);
        o += RS_ALERTPOL_ENTRY;
    }
    if (csl) rs_coldstart_machine_save(al->cs, m->key, o, csl);
    return n;
}

size_t rs_alerts_part_write(const rs_alerts_t *al, int32_t partition,
                            void *buf, size_t cap) {
    size_t need = 16;
    for (uint32_t i = 0; i <= al->mask; i++) {
        const rs_al_mach_t *m = &al->tab[i];
        if (m->key && (partition < 0 || m->partition == partition))
            need += rs_al_mach_put(al, m, NULL);
    }
    if (!buf || cap < need) return need;
    char *o = buf;
    uint32_t hd[2] = {RS_AL_PART_MAGIC, RS_ALERTS_PART_VERSION};
    uint64_t nm = 0;
    size_t off = 16;
    for (uint32_t i = 0; i <= al->mask; i++) {
        const rs_al_mach_t *m = &al->tab[i];
        if (!m->key || (partition >= 0 && m->partition != partition)) continue;
        off += rs_al_mach_put(al, m, o + off);
        nm++;
    }
    memcpy(o, hd, sizeof(hd));
    memcpy(o + 8, &nm, 8);
    return need;
}

size_t rs_alerts_machine_write(const rs_alerts_t *al, const char *machine,
                               void *buf, size_t cap) {
    rs_al_mach_t *m = rs_al_mach((rs_alerts_t *)al, rs_hash_str(machine), 0);
    if (!m) return 0;
    size_t need = 16 + rs_al_mach_put(al, m, NULL);
    if (!buf || cap < need) return need;
    char *o = buf;
    uint32_t hd[2] = {RS_AL_PART_MAGIC, RS_ALERTS_PART_VERSION};
    uint64_t one = 1;
    memcpy(o, hd, sizeof(hd));
    memcpy(o + 8, &one, 8);
    rs_al_mach_put(al, m, o + 16);
    return need;
}

/* Check the record (every machine) before anything changes. */
static rs_err_t rs_al_part_check(const rs_alerts_t *al, int32_t partition,
                                 const char *in, size_t len, uint64_t *nm,
                                 char *errstr, size_t errstr_size) {
    uint32_t hd[2] = {0, 0};
    if (in && len >= 16) memcpy(hd, in, sizeof(hd));
    if (!in || len < 16 || hd[0] != RS_AL_PART_MAGIC)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "maintenance machines: %zu bytes without their "
                       "header (magic \"RSMP\", version)", len);
    if (hd[1] != RS_ALERTS_PART_VERSION)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "maintenance machines: version %u, this build reads "
                       "version %d", hd[1], RS_ALERTS_PART_VERSION);
    memcpy(nm, in + 8, 8);
    if (*nm > (uint64_t)al->mc.max_machines || *nm > (len - 16) / RS_AL_MREC)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "maintenance machines: %llu machines in %zu bytes "
                       "(at most maintenance.max_machines %lld)",
                       (unsigned long long)*nm, len,
                       (long long)al->mc.max_machines);
    size_t o = 16;
    char e2[256];
    for (uint64_t k = 0; k < *nm; k++) {
        if (len - o < RS_AL_MREC)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "maintenance machines: truncated at machine %llu "
                           "of %llu", (unsigned long long)k,
                           (unsigned long long)*nm);
        const char *e = in + o;
        uint64_t key;
        int64_t last_t;
        int32_t part;
        uint32_t csl, z1 = 0, z2 = 0;
        memcpy(&key, e, 8);
        memcpy(&last_t, e + 8, 8);
        memcpy(&part, e + 16, 4);
        memcpy(&csl, e + 24, 4);
        memcpy(&z1, e + 22, 2);
        memcpy(&z2, e + 28, 4);
        uint8_t failed = (uint8_t)e[20], haspol = (uint8_t)e[21];
        size_t body = (haspol ? RS_ALERTPOL_ENTRY : 0) + (size_t)csl;
        if (!key || failed > 1 || haspol > 1 || z1 || z2 ||
            (partition >= 0 && part != partition) || part < -1 ||
            part >= RS_ALERTS_PARTS ||
            !(last_t == INT64_MIN || (last_t >= -(INT64_C(1) << 62) &&
                                      last_t <= INT64_C(1) << 62)) ||
            csl > RS_COLDSTART_MACHINE_MAX || body > len - o - RS_AL_MREC)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "maintenance machines: machine %llu of %llu "
                           "(key %llx, partition %d%s) is damaged or "
                           "truncated", (unsigned long long)k,
                           (unsigned long long)*nm, (unsigned long long)key,
                           (int)part,
                           partition >= 0 && part != partition
                               ? ", another partition's" : "");
        o += RS_AL_MREC;
        if (haspol) {
            uint64_t pk;
            memcpy(&pk, in + o, 8);
            if (rs_alertpol_entry_check(in + o, e2, sizeof(e2)) != RS_OK ||
                pk != key)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "maintenance machines: machine %llx: its "
                               "alert policy entry: %s",
                               (unsigned long long)key,
                               pk != key ? "another machine's" : e2);
            o += RS_ALERTPOL_ENTRY;
        }
        if (csl && rs_coldstart_machine_check(key, in + o, csl, e2,
                                              sizeof(e2)) != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "maintenance machines: machine %llx: %s",
                           (unsigned long long)key, e2);
        o += csl;
    }
    if (o != len)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "maintenance machines: %zu bytes after the %llu "
                       "machines", len - o, (unsigned long long)*nm);
    return RS_OK;
}

rs_err_t rs_alerts_part_merge(rs_alerts_t *al, int32_t partition,
                              const void *buf, size_t len, uint64_t *n,
                              char *errstr, size_t errstr_size) {
    uint64_t nm = 0, full = 0;
    const char *in = buf;
    if (n) *n = 0;
    rs_err_t err = rs_al_part_check(al, partition, in, len, &nm, errstr,
                                    errstr_size);
    if (err) return err;
    char e2[256];
    size_t o = 16;
    for (uint64_t k = 0; k < nm; k++) {
        const char *e = in + o;
        uint64_t key;
        int64_t last_t;
        int32_t part;
        uint32_t csl;
        memcpy(&key, e, 8);
        memcpy(&last_t, e + 8, 8);
        memcpy(&part, e + 16, 4);
        memcpy(&csl, e + 24, 4);
        int haspol = e[21];
        o += RS_AL_MREC;
        rs_al_mach_t *m = rs_al_mach(al, key, 1);
        if (!m) {
            full++;
            o += (haspol ? RS_ALERTPOL_ENTRY : 0) + csl;
            continue;
        }
        m->last_t = last_t;
        m->partition = part;
        m->failed = (uint8_t)e[20];
        rs_alertpol_forget(al->pol, key);
        if (haspol) {
            if (rs_alertpol_entry_load(al->pol, in + o, e2, sizeof(e2)))
                full++;
            o += RS_ALERTPOL_ENTRY;
        }
        if (al->cs) {
            if (!csl) rs_coldstart_machine_forget(al->cs, key);
            else if (rs_coldstart_machine_load(al->cs, key, in + o, csl, e2,
                                               sizeof(e2)))
                full++;
        }
        o += csl;
        /* the partition's event time: as far as its machines' readings */
        if (part >= 0 && part < RS_ALERTS_PARTS && last_t > al->wm[part])
            al->wm[part] = last_t;
    }
    if (full)
        rs_warn("maintenance", "%llu restored machine entries did not fit "
                "(maintenance.max_machines %lld): those machines start "
                "afresh", (unsigned long long)full,
                (long long)al->mc.max_machines);
    if (n) *n = nm;
    return RS_OK;
}

/* Remove machine entry i of al->tab (linear probing: the entries after
 * it shift back, no tombstones). */
static void rs_al_tab_del(rs_alerts_t *al, uint32_t i) {
    uint32_t j = i;
    memset(&al->tab[i], 0, sizeof(al->tab[i]));
    al->nmach--;
    for (;;) {
        j = (j + 1) & al->mask;
        if (!al->tab[j].key) break;
        uint32_t h = rs_al_home(al, al->tab[j].key);
        int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays) continue;
        al->tab[i] = al->tab[j];
        memset(&al->tab[j], 0, sizeof(al->tab[j]));
        i = j;
    }
}

void rs_alerts_track_gone(rs_alerts_t *al, int on) {
    al->track_gone = on;
    al->ngone = 0;
    al->gone_lost = 0;
}

int rs_alerts_gone_take(rs_alerts_t *al, const uint64_t **keys,
                        const int32_t **parts, uint64_t *lost) {
    int n = al->ngone;
    *keys = al->gone_key;
    *parts = al->gone_part;
    if (lost) *lost = al->gone_lost;
    al->ngone = 0;
    al->gone_lost = 0;
    return n;
}

int rs_alerts_machine_drop(rs_alerts_t *al, int32_t partition, uint64_t key) {
    rs_al_mach_t *m = rs_al_mach(al, key, 0);
    if (!m || m->partition != partition) return 0;
    rs_alertpol_forget(al->pol, m->key);
    if (al->cs) rs_coldstart_machine_forget(al->cs, m->key);
    rs_al_tab_del(al, (uint32_t)(m - al->tab));
    return 1;
}

int rs_alerts_dirty_take(rs_alerts_t *al, const rs_alerts_dirty_t **d,
                         uint64_t *lost) {
    int n = al->ndirty;
    *d = al->dirty;
    if (lost) *lost = al->dirty_lost;
    al->ndirty = 0;
    al->dirty_lost = 0;
    return n;
}

void rs_alerts_part_drop(rs_alerts_t *al, int32_t partition, uint64_t *n) {
    uint64_t nd = 0;
    if (n) *n = 0;
    if (partition < 0 || partition >= RS_ALERTS_PARTS) return;
    /* its waiting reports: the new owner reads them again (they are
     * after its labels position only if they were never applied) */
    for (int32_t k = al->phead[partition]; k >= 0;) {
        int32_t next = al->pend[k].next;
        al->pend[k].next = al->pfree;
        al->pfree = k;
        k = next;
    }
    al->phead[partition] = al->ptail[partition] = -1;
    al->wm[partition] = INT64_MIN;
    /* a pass that restarts at a slot after a shift: entries only move
     * back, so a moved one is seen again at i */
    for (uint32_t i = 0; i <= al->mask;) {
        rs_al_mach_t *m = &al->tab[i];
        if (!m->key || m->partition != partition) {
            i++;
            continue;
        }
        uint64_t key = m->key;
        rs_alertpol_forget(al->pol, key);
        if (al->cs) rs_coldstart_machine_forget(al->cs, key);
        rs_al_tab_del(al, i);
        nd++;
    }
    if (n) *n = nd;
}

void rs_alerts_set_foreign(rs_alerts_t *al,
                           int (*foreign)(void *o, int32_t partition),
                           void *o) {
    al->foreign = foreign;
    al->foreign_o = o;
}

void rs_alerts_snapshot(rs_alerts_t *al) {
    rs_alertpol_stats(al->pol, &al->st.pol);
    al->st.pol.caught = al->st.caught; /* eval's rule (rs_al_apply) */
    /* The standby copies' open episodes are their owner's: counted apart
     * (a pass over the table, only with copies configured). */
    al->st.open_standby = 0;
    if (al->foreign) {
        for (uint32_t i = 0; i <= al->mask; i++) {
            const rs_al_mach_t *m = &al->tab[i];
            if (m->key && m->partition >= 0 &&
                al->foreign(al->foreign_o, m->partition) &&
                rs_alertpol_is_open(al->pol, m->key))
                al->st.open_standby++;
        }
        al->st.pol.open -= al->st.open_standby <= al->st.pol.open
                               ? al->st.open_standby
                               : al->st.pol.open;
    }
    al->st.coldstart_failures = al->cs ? rs_coldstart_failures(al->cs) : 0;
    al->st.coldstart_caught = al->cs ? rs_coldstart_caught(al->cs) : 0;
    pthread_mutex_lock(&al->lock);
    al->snap = al->st;
    pthread_mutex_unlock(&al->lock);
}

void rs_alerts_stats(rs_alerts_t *al, rs_alerts_stats_t *st) {
    pthread_mutex_lock(&al->lock);
    *st = al->snap;
    pthread_mutex_unlock(&al->lock);
}

void rs_alerts_prometheus(rs_alerts_t *al, rs_http_buf_t *b) {
    rs_alerts_stats_t *st = rs_malloc(sizeof(*st));
    rs_alerts_stats(al, st);
    const rs_alertpol_stats_t *p = &st->pol;
    rs_http_buf_printf(
        b,
        "# HELP riskstream_alerts_open machines with an open alert episode "
        "(maintenance), of the partitions this instance owns\n"
        "# TYPE riskstream_alerts_open gauge\n"
        "riskstream_alerts_open %llu\n"
        "# HELP riskstream_alerts_open_standby open alert episodes in "
        "standby copies (state.standby): their owner counts them\n"
        "# TYPE riskstream_alerts_open_standby gauge\n"
        "riskstream_alerts_open_standby %llu\n"
        "# HELP riskstream_alert_episodes_total alert episodes started "
        "(debounced; one alert each unless in cool-down)\n"
        "# TYPE riskstream_alert_episodes_total counter\n"
        "riskstream_alert_episodes_total %llu\n"
        "# HELP riskstream_alert_episodes_suppressed_total episodes opened "
        "silently within maintenance.alert_cooldown of the machine's last "
        "alert\n# TYPE riskstream_alert_episodes_suppressed_total counter\n"
        "riskstream_alert_episodes_suppressed_total %llu\n"
        "# HELP riskstream_maintenance_alerts_total alerts on the alerts "
        "topic by kind\n# TYPE riskstream_maintenance_alerts_total counter\n"
        "riskstream_maintenance_alerts_total{kind=\"alert\"} %llu\n"
        "riskstream_maintenance_alerts_total{kind=\"escalated\"} %llu\n"
        "# HELP riskstream_failures_total machine failures reported\n"
        "# TYPE riskstream_failures_total counter\n"
        "riskstream_failures_total %llu\n"
        "# HELP riskstream_failures_caught_total failures in an open alert "
        "episode or with an alert within maintenance.horizon before them "
        "(as eval --maintenance counts them)\n"
        "# TYPE riskstream_failures_caught_total counter\n"
        "riskstream_failures_caught_total %llu\n"
        "# HELP riskstream_repairs_total repairs (labels with value 0 naming the machine)\n"
        "# TYPE riskstream_repairs_total counter\n"
        "riskstream_repairs_total %llu\n"
        "# HELP riskstream_failure_labels_repeated_total failure labels of a "
        "failure already applied (no reading since)\n"
        "# TYPE riskstream_failure_labels_repeated_total counter\n"
        "riskstream_failure_labels_repeated_total %llu\n"
        "# HELP riskstream_maintenance_reports_waited_total failure and "
        "repair labels that waited for their machine's readings to reach "
        "their label time (the labels topic read ahead of the events)\n"
        "# TYPE riskstream_maintenance_reports_waited_total counter\n"
        "riskstream_maintenance_reports_waited_total %llu\n"
        "# HELP riskstream_maintenance_machines_expired_total machines "
        "forgotten after features.key_ttl without a reading\n"
        "# TYPE riskstream_maintenance_machines_expired_total counter\n"
        "riskstream_maintenance_machines_expired_total %llu\n"
        "# HELP riskstream_coldstart_failures failures the cold-start blend "
        "has counted (maintenance.cold_start; kept in the checkpoint)\n"
        "# TYPE riskstream_coldstart_failures gauge\n"
        "riskstream_coldstart_failures %llu\n"
        "# HELP riskstream_coldstart_caught failures among them that the "
        "model's own score alerted on at least a third of the horizon "
        "ahead (the model's record: its weight is caught / (failures + "
        "sensors))\n"
        "# TYPE riskstream_coldstart_caught gauge\n"
        "riskstream_coldstart_caught %llu\n",
        (unsigned long long)p->open, (unsigned long long)st->open_standby,
        (unsigned long long)p->episodes,
        (unsigned long long)p->suppressed, (unsigned long long)p->alerts,
        (unsigned long long)p->escalations, (unsigned long long)p->failures,
        (unsigned long long)p->caught, (unsigned long long)st->repairs,
        (unsigned long long)st->repeated, (unsigned long long)st->waited,
        (unsigned long long)st->expired,
        (unsigned long long)st->coldstart_failures,
        (unsigned long long)st->coldstart_caught);
    static const double le[] = {600, 1800, 3600, 7200, 14400, 28800,
                                43200, 86400, 172800, 604800};
    const char *nm = "riskstream_alert_lead_time_seconds";
    const rs_hist_t *h = &st->leads;
    rs_http_buf_printf(b, "# HELP %s failure time minus the earlier of the "
                       "open episode's start and the first alert within "
                       "the horizon, caught failures\n# TYPE %s histogram\n",
                       nm, nm);
    for (size_t i = 0; i < RS_ARRAY_LEN(le); i++)
        rs_http_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", nm, le[i],
                           (unsigned long long)rs_hist_count_le(
                               h, (int64_t)le[i]));
    rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.0f\n"
                       "%s_count %llu\n", nm, (unsigned long long)h->total,
                       nm, h->sum, nm, (unsigned long long)h->total);
    free(st);
}
