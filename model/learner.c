/* learner.c -- label joins, maturity, corrections, the horizon (see
 * learner.h for the design note). */
#define _GNU_SOURCE
#include "model/learner.h"
#include "model/rul.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RS_LEARNER_MIN_POS 20      /* positives before their p99 is used */
#define RS_LEARNER_MARGIN 1.25     /* auto horizon: delay x this         */
#define RS_LEARNER_HIST_MAX 1024   /* history records followed at most   */
#define RS_LEARNER_REH 16384       /* failure positives kept to rehearse */
/* rehearsal's share of the replay steps: the loss-balanced share of
 * positives, 1 / (1 + pos_weight), weighted n0 / (n + n0) */
#define RS_LEARNER_REH_Q(l)                                                  \
    (1.0 / (1.0 + (l)->conf.pos_weight) *                                    \
     (double)(l)->reh_n0 / ((double)(l)->reh_fail + (double)(l)->reh_n0))

struct rs_learner_s {
    rs_model_t *m;
    rs_model_conf_t conf;
    rs_learnlog_meta_t meta;
    rs_learnlog_t **logs;      /* [nlogs] by partition                   */
    uint64_t *obs;             /* [nlogs] next record to observe          */
    int32_t nlogs;
    rs_hist_t dall, dpos;      /* observed delays, seconds              */
    int64_t horizon;           /* cached rs_learner_horizon_for          */
    uint64_t horizon_seen;     /* delays when it was computed            */
    rs_learner_stats_t st;
    rs_rng_t rng;              /* replay draws                           */
    int obs_explicit;          /* rs_learner_observe_to drives observing  */
    const void *hist[RS_LEARNER_HIST_MAX];
    uint8_t *scratch;          /* rs_learner_forward: records            */
    int64_t fh;                /* failure horizon (0: labels are events') */
    int scratch_n;
    int reh_n0;                /* rehearsal prior (failures); 0: off     */
    uint64_t reh_fail;         /* failures joined (rehearsal's n)        */
    uint64_t *reh;             /* [RS_LEARNER_REH] positives' RS_LPOS    */
    uint64_t reh_n;            /* positives kept (<= RS_LEARNER_REH)     */
    rs_rul_t *rul;             /* remaining useful life head (borrowed)  */
    uint64_t *rul_cur;         /* [nlogs] RUL maturity cursor            */
    float *rul_x;              /* [dim] a record's features              */
};

/* The failure report delay: declared (model.label_delay) or the observed
 * 99th percentile, whichever is larger. */
static int64_t rs_learner_report_delay(const rs_learner_t *l) {
    int64_t d = l->conf.label_delay > 0 ? l->conf.label_delay : 0;
    if (l->dpos.total) {
        int64_t q = rs_hist_quantile(&l->dpos, 0.99) * 1000;
        if (q > d) d = q;
    }
    return d;
}

static void rs_learner_refresh_horizon(rs_learner_t *l) {
    l->horizon = rs_learner_horizon_for(&l->conf, &l->dall, &l->dpos);
    if (l->fh > 0 && l->conf.label_horizon == RS_MODEL_HORIZON_AUTO) {
        /* failures: a reading is resolved once its machine can no longer
         * fail within fh of it and the failure be reported */
        int64_t d = rs_learner_report_delay(l);
        double hz = RS_LEARNER_MARGIN * (double)(l->fh + d);
        l->horizon = hz > (double)l->conf.label_horizon_max
                         ? l->conf.label_horizon_max
                         : (int64_t)hz;
    }
    l->horizon_seen = l->dall.total;
}

rs_learner_t *rs_learner_new(rs_model_t *m, const rs_model_conf_t *conf) {
    rs_learner_t *l = rs_calloc(1, sizeof(*l));
    l->m = m;
    l->conf = *conf;
    rs_model_lrec_meta(m, &l->meta);
    rs_hist_init(&l->dall);
    rs_hist_init(&l->dpos);
    rs_learner_refresh_horizon(l);
    rs_rng_seed(&l->rng, 0x7265706c6179ull ^ (uint64_t)conf->seq.seed);
    return l;
}

void rs_learner_destroy(rs_learner_t *l) {
    if (!l) return;
    free(l->logs);
    free(l->obs);
    free(l->scratch);
    free(l->rul_cur);
    free(l->rul_x);
    free(l->reh);
    free(l);
}

rs_err_t rs_learner_set_model(rs_learner_t *l, rs_model_t *m) {
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(m, &meta);
    if (memcmp(&meta, &l->meta, sizeof(meta))) return RS_ERR_INVALID;
    l->m = m;
    return RS_OK;
}

rs_err_t rs_learner_attach(rs_learner_t *l, rs_learnlog_t *lg) {
    int32_t p = rs_learnlog_partition(lg);
    /* the whole metadata: records of the same size can be of another
     * feature layout ("lr" dim 7 and 8) or architecture ("seq") */
    rs_learnlog_meta_t meta;
    rs_learnlog_meta(lg, &meta);
    if (memcmp(&meta, &l->meta, sizeof(meta))) return RS_ERR_INVALID;
    if (p >= l->nlogs) {
        int32_t n = p + 1;
        l->logs = rs_realloc(l->logs, sizeof(*l->logs) * (size_t)n);
        memset(l->logs + l->nlogs, 0, sizeof(*l->logs) * (size_t)(n - l->nlogs));
        l->obs = rs_realloc(l->obs, sizeof(*l->obs) * (size_t)n);
        l->rul_cur = rs_realloc(l->rul_cur, sizeof(*l->rul_cur) * (size_t)n);
        memset(l->rul_cur + l->nlogs, 0,
               sizeof(*l->rul_cur) * (size_t)(n - l->nlogs));
        l->nlogs = n;
    }
    if (l->logs[p]) return RS_ERR_STATE;
    l->logs[p] = lg;
    l->rul_cur[p] = 0;
    /* the standardiser takes in what is appended from now on (what was
     * there was observed before: its statistics are in the model) */
    l->obs[p] = rs_learnlog_end(lg);
    {   /* a new log's first segment, made here (the resolver) rather than
         * on the writer at its first append (learnlog.h Threads) */
        char e[256];
        (void)rs_learnlog_prepare(lg, e, sizeof(e));
    }
    return RS_OK;
}

rs_learnlog_t *rs_learner_detach(rs_learner_t *l, int32_t partition) {
    if (partition < 0 || partition >= l->nlogs) return NULL;
    rs_learnlog_t *lg = l->logs[partition];
    l->logs[partition] = NULL;
    return lg;
}

rs_learnlog_t *rs_learner_log(const rs_learner_t *l, int32_t partition) {
    return partition >= 0 && partition < l->nlogs ? l->logs[partition] : NULL;
}

/* ------------------------------------------------------------ horizon */

int64_t rs_learner_horizon_for(const rs_model_conf_t *conf,
                               const rs_hist_t *all, const rs_hist_t *pos) {
    if (conf->label_horizon != RS_MODEL_HORIZON_AUTO)
        return conf->label_horizon;
    int64_t d = conf->label_delay > 0 ? conf->label_delay : 0;
    const rs_hist_t *h = pos && pos->total >= RS_LEARNER_MIN_POS ? pos
                         : all && all->total >= RS_LEARNER_MIN_POS ? all
                                                                    : NULL;
    if (h) {
        int64_t q = rs_hist_quantile(h, 0.99) * 1000; /* seconds -> ms */
        if (q > d) d = q;
    }
    if (d <= 0) return conf->label_horizon_max; /* nothing known yet */
    double hz = (double)d * RS_LEARNER_MARGIN;
    if (hz > (double)conf->label_horizon_max) return conf->label_horizon_max;
    return (int64_t)hz;
}

int64_t rs_learner_horizon(const rs_learner_t *l) { return l->horizon; }

rs_err_t rs_learner_check_conf(const rs_model_conf_t *conf,
                               const rs_hist_t *pos, char *errstr,
                               size_t errstr_size) {
    char a[32], b[32];
    if (conf->label_horizon == RS_MODEL_HORIZON_AUTO) {
        if (conf->label_delay > conf->label_horizon_max) {
            rs_duration_fmt(conf->label_delay, a, sizeof(a));
            rs_duration_fmt(conf->label_horizon_max, b, sizeof(b));
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "model.label_delay %s is above "
                           "model.label_horizon_max %s: labels would come "
                           "after their events were learned as negatives",
                           a, b);
        }
        return RS_OK;
    }
    if (conf->label_delay > 0 && conf->label_horizon < conf->label_delay) {
        rs_duration_fmt(conf->label_horizon, a, sizeof(a));
        rs_duration_fmt(conf->label_delay, b, sizeof(b));
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "model.label_horizon %s is below the label delay %s: "
                       "every event would be learned as a negative before "
                       "its label arrives (use label_horizon: auto)", a, b);
    }
    if (pos && pos->total >= RS_LEARNER_MIN_POS) {
        int64_t med = rs_hist_quantile(pos, 0.5) * 1000;
        if (conf->label_horizon < med) {
            rs_duration_fmt(conf->label_horizon, a, sizeof(a));
            rs_duration_fmt(med, b, sizeof(b));
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "model.label_horizon %s is below the observed "
                           "label delay (median %s over %llu positives): "
                           "most frauds would be learned as legitimate "
                           "first (use label_horizon: auto)", a, b,
                           (unsigned long long)pos->total);
        }
    }
    return RS_OK;
}

/* ------------------------------------------------------------ history */

/* The history of record `rec` (of `partition`) into l->hist, oldest
 * first: at most its hdr.hist records, following prev references. */
static int rs_learner_history(rs_learner_t *l, const void *rec) {
    const rs_lrec_hdr_t *h = rec;
    int want = h->hist, n = 0;
    if (want > RS_LEARNER_HIST_MAX) want = RS_LEARNER_HIST_MAX;
    uint64_t ref = h->prev;
    while (n < want && ref) {
        uint64_t lp = ref - 1;
        rs_learnlog_t *lg = rs_learner_log(l, RS_LPOS_PART(lp));
        const rs_lrec_hdr_t *p =
            lg ? rs_learnlog_rec(lg, RS_LPOS_POS(lp)) : NULL;
        if (!p || p->entity != h->entity || p->t > h->t) break;
        l->hist[want - 1 - n] = p; /* newest last */
        n++;
        ref = p->prev;
    }
    if (n < want) {
        l->st.hist_cut++;
        memmove(l->hist, l->hist + (want - n), sizeof(l->hist[0]) * (size_t)n);
    }
    return n;
}

static rs_err_t rs_learner_learn(rs_learner_t *l, const void *rec, int y,
                                 rs_model_learn_t how, double psi) {
    int nh = rs_learner_history(l, rec);
    rs_err_t err = rs_model_learn_lrec(l->m, rec, l->hist, nh, y, how, psi);
    if (err) l->st.failed++;
    return err;
}

/* --------------------------------------------------------------- labels */

/* Index the new records of partition p's log and let the model observe
 * those before `upto` (its standardiser), in log order. */
static void rs_learner_observe_upto(rs_learner_t *l, int32_t p, uint64_t upto) {
    rs_learnlog_t *lg = l->logs[p];
    rs_learnlog_index(lg);
    {   /* the log's next segment, made here rather than on the writer
         * (the scoring thread) at its roll; a failure is the writer's to
         * report there */
        char e[256];
        (void)rs_learnlog_prepare(lg, e, sizeof(e));
    }
    uint64_t end = rs_learnlog_indexed(lg);
    if (upto < end) end = upto;
    for (; l->obs[p] < end; l->obs[p]++) {
        const void *r = rs_learnlog_rec(lg, l->obs[p]);
        if (r) rs_model_observe(l->m, r);
    }
}

/* The record of `id`: in `partition`'s log first (labels are keyed like
 * their events), then in every other attached log (a labels topic
 * partitioned otherwise); partition < 0: every log. */
void rs_learner_observe_to(rs_learner_t *l, int32_t partition, uint64_t end) {
    l->obs_explicit = 1;
    if (partition >= 0 && partition < l->nlogs && l->logs[partition])
        rs_learner_observe_upto(l, partition, end);
}

/* Index partition p's new records for lookups; without the trainer's
 * rs_learner_observe_to, observe them too. */
static void rs_learner_index(rs_learner_t *l, int32_t p) {
    if (l->obs_explicit) rs_learnlog_index(l->logs[p]);
    else rs_learner_observe_upto(l, p, UINT64_MAX);
}

void rs_learner_observe_from(rs_learner_t *l, int32_t partition, uint64_t pos) {
    if (partition >= 0 && partition < l->nlogs && l->logs[partition])
        l->obs[partition] = pos;
}

static rs_err_t rs_learner_find(rs_learner_t *l, int32_t partition,
                                uint64_t id, int64_t t_hint,
                                rs_learnlog_t **lgo, uint64_t *pos) {
    if (partition >= 0 && partition < l->nlogs && l->logs[partition]) {
        rs_learner_index(l, partition);
        if (rs_learnlog_find(l->logs[partition], id, t_hint, pos) == RS_OK) {
            *lgo = l->logs[partition];
            return RS_OK;
        }
    }
    for (int32_t p = 0; p < l->nlogs; p++) {
        rs_learnlog_t *lg = l->logs[p];
        if (!lg || p == partition) continue;
        rs_learner_index(l, p);
        if (rs_learnlog_find(lg, id, t_hint, pos) == RS_OK) {
            *lgo = lg;
            return RS_OK;
        }
    }
    return RS_ERR_NOTFOUND;
}

static void rs_learner_replay_some(rs_learner_t *l, rs_learnlog_t *lg);

rs_err_t rs_learner_label(rs_learner_t *l, int32_t partition,
                          const rs_label_t *lb, int64_t t_hint, double psi,
                          rs_learner_res_t *res) {
    rs_learner_res_t r = {RS_LEARNER_UNKNOWN, 0, lb->value >= 0.5, 0};
    rs_learnlog_t *lg = NULL;
    uint64_t pos = 0;
    l->st.labels++;
    if (rs_learner_find(l, partition, rs_hash_str(lb->event_id), t_hint, &lg,
                        &pos) != RS_OK) {
        l->st.unknown++;
        if (res) *res = r;
        return RS_ERR_NOTFOUND;
    }
    l->st.joined++;
    const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
    r.score = h->score;
    r.delay_ms = lb->label_time_ms - h->t;
    uint8_t st = h->state;
    if (st & RS_LREC_LABELED) {
        r.outcome = RS_LEARNER_REPEAT;
        l->st.repeats++;
        if (res) *res = r;
        return RS_OK;
    }
    /* the delay of the first label of each record */
    int64_t ds = r.delay_ms > 0 ? r.delay_ms / 1000 : 0;
    rs_hist_record(&l->dall, ds);
    if (r.y) rs_hist_record(&l->dpos, ds);
    if (r.delay_ms > l->horizon) l->st.beyond_horizon++;
    /* auto: recompute with every delay at first, then every 1024 */
    if (l->conf.label_horizon == RS_MODEL_HORIZON_AUTO &&
        (l->dall.total < 4096 || l->dall.total >= l->horizon_seen + 1024))
        rs_learner_refresh_horizon(l);

    uint8_t nst = (uint8_t)(st | RS_LREC_LABELED | (r.y ? RS_LREC_POSITIVE : 0));
    if (st & RS_LREC_MATURED) {
        if (r.y) {
            if (rs_learner_learn(l, h, 1, RS_MODEL_LEARN_CORRECT, psi)) {
                r.outcome = RS_LEARNER_FAILED;
            } else {
                r.outcome = RS_LEARNER_CORRECTED;
                l->st.corrections++;
                l->st.positives++;
                nst |= RS_LREC_CORRECTED;
            }
        } else {
            r.outcome = RS_LEARNER_CONFIRMED;
            l->st.confirmed++;
        }
    } else if (rs_learner_learn(l, h, r.y, RS_MODEL_LEARN_LABEL, psi)) {
        r.outcome = RS_LEARNER_FAILED;
    } else {
        r.outcome = RS_LEARNER_LEARNED;
        if (r.y) l->st.positives++; else l->st.negatives++;
        nst |= RS_LREC_LEARNED;
    }
    rs_learnlog_set_state(lg, pos, nst);
    if (r.outcome == RS_LEARNER_LEARNED || r.outcome == RS_LEARNER_CORRECTED)
        rs_learner_replay_some(l, lg);
    if (res) *res = r;
    return RS_OK;
}

/* Rehearsal (rs_learner_set_rehearsal): a replay step draws one of the
 * kept failure positives with probability q; 1 if it learned one. */
static int rs_learner_rehearse(rs_learner_t *l) {
    if (!l->reh_n0 || !l->reh_n) return 0;
    double q = RS_LEARNER_REH_Q(l);
    if (q <= 0 || rs_rng_uniform(&l->rng) >= q) return 0;
    uint64_t lp = l->reh[rs_rng_below(&l->rng, l->reh_n)];
    rs_learnlog_t *lg = rs_learner_log(l, RS_LPOS_PART(lp));
    const rs_lrec_hdr_t *h = lg ? rs_learnlog_rec(lg, RS_LPOS_POS(lp)) : NULL;
    if (!h || !(h->state & RS_LREC_POSITIVE)) return 0;
    if (rs_learner_learn(l, h, 1, RS_MODEL_LEARN_REPLAY, -1) == RS_OK) {
        l->st.replays++;
        l->st.rehearsals++;
    }
    return 1;
}

/* Experience replay (model.replay): after a step on a new record, that
 * many steps on records drawn uniformly from what this log keeps and
 * has learned (labelled, or negative at maturity), each with its label.
 * Online learning sees every example once, in time order; replaying the
 * kept past gives it the repeated passes an offline model gets, and
 * decorrelates consecutive steps.  With rehearsal (maintenance) a step
 * may draw a kept failure positive instead (rs_learner_rehearse).
 * Deterministic for a sequence of calls (the learner's own generator). */
static void rs_learner_replay_some(rs_learner_t *l, rs_learnlog_t *lg) {
    if (l->conf.replay <= 0) return;
    rs_learnlog_stats_t st;
    rs_learnlog_stats(lg, &st);
    const uint64_t lo = st.first, hi = st.cursor;
    for (int64_t k = 0; k < l->conf.replay; k++) {
        if (rs_learner_rehearse(l)) continue;
        if (hi <= lo + 1) continue;
        for (int tries = 0; tries < 4; tries++) {
            uint64_t p = lo + rs_rng_below(&l->rng, hi - lo);
            const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, p);
            if (!h || !(h->state & RS_LREC_LEARNED)) continue;
            int y = (h->state & RS_LREC_POSITIVE) != 0;
            if (rs_learner_learn(l, h, y, RS_MODEL_LEARN_REPLAY, -1) == RS_OK)
                l->st.replays++;
            break;
        }
    }
}

/* ------------------------------------------- remaining useful life */

void rs_learner_set_rul(rs_learner_t *l, rs_rul_t *rul) {
    l->rul = rul;
    free(l->rul_x);
    l->rul_x = rul ? rs_calloc((size_t)rs_rul_dim(rul) + 1, sizeof(float))
                   : NULL;
}

/* Record h (at pos of lg) learns `rul_ms` of remaining life, or (rul_ms <
 * 0) is censored for good; either way it is done (RS_LREC_RUL). */
static void rs_learner_rul_one(rs_learner_t *l, rs_learnlog_t *lg,
                               uint64_t pos, const rs_lrec_hdr_t *h,
                               int64_t rul_ms) {
    if (rul_ms >= 0 && rs_model_lrec_x(l->m, h, l->rul_x) == RS_OK) {
        rs_rul_learn(l->rul, l->rul_x, h->score, rul_ms);
        l->st.rul_learned++;
    } else {
        l->st.rul_censored++;
    }
    rs_learnlog_set_state(lg, pos, (uint8_t)(h->state | RS_LREC_RUL));
}

/* Readings whose machine ran the cap (and the report delay) past them
 * without a failure: their remaining life is at least the cap -- the
 * capped target.  Up to max, from the partition's RUL cursor. */
static int rs_learner_rul_mature(rs_learner_t *l, int32_t p,
                                 rs_learnlog_t *lg, int64_t watermark_ms,
                                 int max) {
    const int64_t cap = rs_rul_cap(l->rul);
    const int64_t wait = cap + rs_learner_report_delay(l);
    if (watermark_ms < INT64_MIN + wait) return 0;
    const int64_t cutoff = watermark_ms - wait;
    rs_learnlog_stats_t ls;
    rs_learnlog_stats(lg, &ls);
    uint64_t pos = l->rul_cur[p] > ls.first ? l->rul_cur[p] : ls.first;
    int n = 0;
    for (; pos < ls.end && n < max; pos++) {
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
        if (!h) continue;
        /* rough time order: a later record that is older waits (as the
         * classifier's maturity) */
        if (h->t >= cutoff) break;
        if (h->state & RS_LREC_RUL) continue;
        rs_learner_rul_one(l, lg, pos, h, cap);
        n++;
    }
    l->rul_cur[p] = pos;
    return n;
}

int rs_learner_advance(rs_learner_t *l, int32_t partition,
                       int64_t watermark_ms, double psi, int max,
                       void (*resolved)(void *opaque, float score, int label),
                       void *opaque) {
    rs_learnlog_t *lg = rs_learner_log(l, partition);
    if (!lg) return 0;
    if (!l->obs_explicit) rs_learner_observe_upto(l, partition, UINT64_MAX);
    const int64_t hz = l->horizon;
    int64_t cutoff = watermark_ms < INT64_MIN + hz ? INT64_MIN
                                                    : watermark_ms - hz;
    int n = 0;
    uint64_t pos;
    while (n < max && rs_learnlog_next_mature(lg, cutoff, &pos) == RS_OK) {
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
        if (rs_learner_learn(l, h, 0, RS_MODEL_LEARN_MATURED, psi) == RS_OK) {
            l->st.matured++;
            if (resolved) resolved(opaque, h->score, 0);
        }
        rs_learner_replay_some(l, lg);
        /* a failed one is not retried */
        rs_learnlog_set_state(lg, pos, (uint8_t)(h->state | RS_LREC_LEARNED |
                                                 RS_LREC_MATURED));
        n++;
    }
    if (l->rul && n < max) n += rs_learner_rul_mature(l, partition, lg,
                                                      watermark_ms, max - n);
    int64_t keep = cutoff < INT64_MIN + l->conf.log_keep
                       ? INT64_MIN
                       : cutoff - l->conf.log_keep;
    rs_learnlog_truncate(lg, keep);
    return n;
}

/* ------------------------------------------- failure-horizon labels */

void rs_learner_set_rehearsal(rs_learner_t *l, int n0) {
    l->reh_n0 = n0 > 0 ? n0 : 0;
    if (l->reh_n0 && !l->reh) l->reh = rs_calloc(RS_LEARNER_REH, sizeof(*l->reh));
}

#define RS_LEARNER_REH_MAGIC 0x48525352u /* "RSRH" */
#define RS_LEARNER_REH_HDR 24              /* magic, version, n, kept    */

size_t rs_learner_rehearsal_size(const rs_learner_t *l) {
    return l->reh_n0 ? RS_LEARNER_REH_HDR + (size_t)l->reh_n * 8 : 0;
}

/* u32 magic | u32 version (1) | u64 n | u64 kept | u64 RS_LPOS[kept],
 * host byte order (a local file). */
void rs_learner_rehearsal_save(const rs_learner_t *l, void *buf) {
    if (!l->reh_n0) return;
    uint32_t hd[2] = {RS_LEARNER_REH_MAGIC, 1};
    char *b = buf;
    memcpy(b, hd, 8);
    memcpy(b + 8, &l->reh_fail, 8);
    memcpy(b + 16, &l->reh_n, 8);
    if (l->reh_n) memcpy(b + RS_LEARNER_REH_HDR, l->reh, (size_t)l->reh_n * 8);
}

rs_err_t rs_learner_rehearsal_load(rs_learner_t *l, const void *buf,
                                   size_t len, const int64_t *end,
                                   int32_t nend, char *errstr,
                                   size_t errstr_size) {
    if (!l->reh_n0)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "rehearsal state: rehearsal is off");
    uint32_t hd[2] = {0, 0};
    uint64_t n = 0, kept = UINT64_MAX;
    const char *b = buf;
    if (buf && len >= RS_LEARNER_REH_HDR) {
        memcpy(hd, b, 8);
        memcpy(&n, b + 8, 8);
        memcpy(&kept, b + 16, 8);
    }
    if (hd[0] != RS_LEARNER_REH_MAGIC || hd[1] != 1 ||
        kept > RS_LEARNER_REH || len != RS_LEARNER_REH_HDR + kept * 8)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "rehearsal state: %zu bytes, not a version-1 state",
                       len);
    l->reh_fail = n;
    l->reh_n = 0;
    for (uint64_t i = 0; i < kept; i++) {
        uint64_t lp;
        memcpy(&lp, b + RS_LEARNER_REH_HDR + i * 8, 8);
        int32_t p = RS_LPOS_PART(lp);
        if (p < 0 || p >= nend || end[p] < 0 ||
            RS_LPOS_POS(lp) >= (uint64_t)end[p])
            continue; /* past the restored log's end: written again */
        l->reh[l->reh_n++] = lp;
    }
    return RS_OK;
}

void rs_learner_set_failure_horizon(rs_learner_t *l, int64_t horizon_ms) {
    l->fh = horizon_ms > 0 ? horizon_ms : 0;
    rs_learner_refresh_horizon(l);
}

/* First position in [lo, hi) whose record's event time is >= t (records
 * are in rough time order; missing records count as older). */
static uint64_t rs_learner_lower_bound(rs_learnlog_t *lg, uint64_t lo,
                                       uint64_t hi, int64_t t) {
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, mid);
        if (!h || h->t < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* One failure (repair = 0) or repair (repair = 1) of `entity` at t_fail
 * in log p: see learner.h.  Every record of the entity up to t_fail that
 * the walk reaches ends up LABELED (resolved for this life), so a later
 * failure of the next life never reaches back into this one. */
static void rs_learner_failure_log(rs_learner_t *l, int32_t p, uint64_t entity,
                                   int64_t t_fail, double psi, int repair,
                                   rs_learner_failure_t *r, int *seen) {
    rs_learnlog_t *lg = l->logs[p];
    rs_learner_index(l, p);
    rs_learnlog_stats_t ls;
    rs_learnlog_stats(lg, &ls);
    const uint64_t end = rs_learnlog_indexed(lg);
    const int64_t H = l->fh > 0 ? l->fh : l->horizon;
    /* a repair: no reading of the ended life is a positive */
    const int64_t lo_t = repair ? INT64_MAX : t_fail - H;
    /* the remaining useful life of the readings up to the cap before */
    const int64_t cap = l->rul ? rs_rul_cap(l->rul) : 0;
    const int64_t W = cap > H ? cap : H;
    /* a quarter horizon of slack for records logged out of time order */
    uint64_t start = rs_learner_lower_bound(lg, ls.first, end,
                                            t_fail - W - W / 4);
    if (ls.cursor < start) start = ls.cursor;
    if (start < ls.first) start = ls.first;
    for (uint64_t pos = start; pos < end; pos++) {
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
        if (!h || h->entity != entity || h->t > t_fail) continue;
        *seen = 1;
        if (l->rul && !(h->state & RS_LREC_RUL)) {
            /* failure: known; repair: censored unless the cap was run */
            int64_t left = t_fail - h->t;
            rs_learner_rul_one(l, lg, pos, h,
                               !repair ? RS_MIN(left, cap)
                               : left >= cap ? cap : -1);
        }
        uint8_t st = h->state;
        if (st & RS_LREC_LABELED) {
            r->repeats++;
            continue;
        }
        uint8_t nst = (uint8_t)(st | RS_LREC_LABELED);
        if (h->t >= lo_t) {
            if (st & RS_LREC_MATURED) {
                if (rs_learner_learn(l, h, 1, RS_MODEL_LEARN_CORRECT, psi))
                    continue;
                nst |= RS_LREC_POSITIVE | RS_LREC_CORRECTED;
                r->corrected++;
                l->st.corrections++;
            } else {
                if (rs_learner_learn(l, h, 1, RS_MODEL_LEARN_LABEL, psi))
                    continue;
                nst |= RS_LREC_POSITIVE | RS_LREC_LEARNED;
                r->positives++;
            }
            l->st.positives++;
            if (l->reh_n0 && l->reh_n < RS_LEARNER_REH)
                l->reh[l->reh_n++] = RS_LPOS(p, pos);
        } else if (!(st & RS_LREC_LEARNED)) {
            if (rs_learner_learn(l, h, 0, RS_MODEL_LEARN_LABEL, psi)) continue;
            nst |= RS_LREC_LEARNED;
            r->negatives++;
            l->st.negatives++;
        } else {
            /* an older maturity negative: right as it is; marked so that
             * a failure of the next life within H leaves it alone */
            rs_learnlog_set_state(lg, pos, nst);
            continue;
        }
        rs_learnlog_set_state(lg, pos, nst);
        rs_learner_replay_some(l, lg);
    }
}

static rs_err_t rs_learner_life_end(rs_learner_t *l, int32_t partition,
                                    uint64_t entity, int64_t t_ms,
                                    double psi, int repair,
                                    rs_learner_failure_t *res) {
    rs_learner_failure_t r = {0, 0, 0, 0};
    int seen = 0;
    if (partition >= 0 && partition < l->nlogs && l->logs[partition]) {
        rs_learner_failure_log(l, partition, entity, t_ms, psi, repair, &r,
                               &seen);
    } else {
        for (int32_t p = 0; p < l->nlogs; p++)
            if (l->logs[p])
                rs_learner_failure_log(l, p, entity, t_ms, psi, repair, &r,
                                       &seen);
    }
    if (res) *res = r;
    return seen ? RS_OK : RS_ERR_NOTFOUND;
}

rs_err_t rs_learner_failure(rs_learner_t *l, int32_t partition,
                            uint64_t entity, int64_t t_fail_ms,
                            int64_t label_time_ms, double psi,
                            rs_learner_failure_t *res) {
    l->st.labels++;
    l->st.failures++;
    rs_learner_failure_t r;
    rs_err_t err = rs_learner_life_end(l, partition, entity, t_fail_ms, psi,
                                       0, &r);
    if (res) *res = r;
    if (err != RS_OK) {
        l->st.unknown++;
        return RS_ERR_NOTFOUND;
    }
    l->st.joined++;
    /* rehearsal's n: failures that taught positives (not a repeat) */
    l->reh_fail += r.positives + r.corrected > 0;
    /* the failure's report delay (the label of each reading comes with it) */
    int64_t d = label_time_ms > t_fail_ms ? (label_time_ms - t_fail_ms) / 1000 : 0;
    rs_hist_record(&l->dall, d);
    rs_hist_record(&l->dpos, d);
    rs_learner_refresh_horizon(l);
    return RS_OK;
}

rs_err_t rs_learner_repair(rs_learner_t *l, int32_t partition,
                           uint64_t entity, int64_t t_ms, double psi,
                           rs_learner_failure_t *res) {
    l->st.repairs++;
    return rs_learner_life_end(l, partition, entity, t_ms, psi, 1, res);
}

/* ------------------------------------------------------------- replay */

uint64_t rs_learner_replay(rs_learner_t *l, int32_t partition, int64_t from_ms,
                           int64_t to_ms, int epochs, uint64_t seed) {
    rs_learnlog_t *lg = rs_learner_log(l, partition);
    if (!lg || epochs <= 0) return 0;
    rs_learnlog_stats_t ls;
    rs_learnlog_stats(lg, &ls);
    /* the positions of the learned records in the window */
    uint64_t n = 0, cap = 1024, steps = 0;
    uint64_t *pos = rs_malloc(cap * sizeof(*pos));
    for (uint64_t p = ls.first; p < ls.end; p++) {
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, p);
        if (!h || !(h->state & RS_LREC_LEARNED) || h->t < from_ms ||
            h->t >= to_ms)
            continue;
        if (n == cap) pos = rs_realloc(pos, (cap *= 2) * sizeof(*pos));
        pos[n++] = p;
    }
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    for (int e = 0; e < epochs; e++) {
        for (uint64_t i = n; i > 1; i--) { /* Fisher-Yates */
            uint64_t j = rs_rng_below(&rng, i), t = pos[i - 1];
            pos[i - 1] = pos[j];
            pos[j] = t;
        }
        for (uint64_t i = 0; i < n; i++) {
            const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos[i]);
            int y = (h->state & RS_LREC_POSITIVE) != 0;
            if (rs_learner_learn(l, h, y, RS_MODEL_LEARN_LABEL, -1) == RS_OK)
                steps++;
        }
    }
    free(pos);
    return steps;
}

/* ---------------------------------------------------------------- stats */

void rs_learner_stats(const rs_learner_t *l, rs_learner_stats_t *st) {
    *st = l->st;
    st->horizon_ms = l->horizon;
    st->horizon_auto = l->conf.label_horizon == RS_MODEL_HORIZON_AUTO;
    st->reh_failures = l->reh_fail;
    st->reh_kept = l->reh_n;
    st->delays = l->dall.total;
    st->delay_p50_ms = l->dall.total ? rs_hist_quantile(&l->dall, 0.5) * 1000 : 0;
    st->delay_p99_ms = l->dall.total ? rs_hist_quantile(&l->dall, 0.99) * 1000 : 0;
}

const rs_hist_t *rs_learner_delays(const rs_learner_t *l, int positives) {
    return positives ? &l->dpos : &l->dall;
}

void rs_learner_add_delays(rs_learner_t *l, const rs_hist_t *all,
                           const rs_hist_t *pos) {
    if (all) rs_hist_merge(&l->dall, all);
    if (pos) rs_hist_merge(&l->dpos, pos);
    rs_learner_refresh_horizon(l);
}

/* File: "RSDELAY1" | rs_hist_t all | rs_hist_t pos | u32 checksum of all
 * before it (host byte order: a local state file). */
#define RS_DELAY_MAGIC "RSDELAY1"

rs_err_t rs_learner_delays_save(const rs_learner_t *l, const char *path,
                                char *errstr, size_t errstr_size) {
    size_t len = 8 + 2 * sizeof(rs_hist_t) + 4;
    uint8_t *buf = rs_malloc(len);
    memcpy(buf, RS_DELAY_MAGIC, 8);
    memcpy(buf + 8, &l->dall, sizeof(rs_hist_t));
    memcpy(buf + 8 + sizeof(rs_hist_t), &l->dpos, sizeof(rs_hist_t));
    uint32_t sum = rs_checksum32(buf, len - 4, 0);
    memcpy(buf + len - 4, &sum, 4);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rs_err_t err = RS_OK;
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd) != 0)
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "label delays %s: %s",
                      tmp, strerror(errno));
    if (fd >= 0) close(fd);
    if (!err && rename(tmp, path) != 0)
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "label delays %s: %s",
                      path, strerror(errno));
    free(buf);
    return err;
}

rs_err_t rs_learner_delays_load(const char *path, rs_hist_t *all,
                                rs_hist_t *pos, char *errstr,
                                size_t errstr_size) {
    rs_hist_init(all);
    rs_hist_init(pos);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return RS_OK;
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "label delays %s: %s",
                       path, strerror(errno));
    }
    size_t len = 8 + 2 * sizeof(rs_hist_t) + 4;
    uint8_t *buf = rs_malloc(len + 1);
    ssize_t got = read(fd, buf, len + 1);
    close(fd);
    uint32_t sum = 0;
    if (got == (ssize_t)len) memcpy(&sum, buf + len - 4, 4);
    rs_err_t err = RS_OK;
    if (got != (ssize_t)len || memcmp(buf, RS_DELAY_MAGIC, 8) ||
        sum != rs_checksum32(buf, len - 4, 0)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "label delays %s: damaged or of another version "
                      "(delete it: it only holds observed delays)", path);
    } else {
        memcpy(all, buf + 8, sizeof(rs_hist_t));
        memcpy(pos, buf + 8 + sizeof(rs_hist_t), sizeof(rs_hist_t));
    }
    free(buf);
    return err;
}

/* ------------------------------------------------ single-thread use */

rs_err_t rs_learner_forward(rs_learner_t *l, int32_t partition,
                            rs_model_t *m, rs_model_input_t *in, int n,
                            rs_model_output_t *out, float *contrib,
                            unsigned flags, char *errstr,
                            size_t errstr_size) {
    rs_learnlog_t *lg = rs_learner_log(l, partition);
    const size_t R = l->meta.rec_size;
    const int rem = (flags & RS_MODEL_FWD_REMEMBER) &&
                    !(flags & RS_MODEL_FWD_DRY);
    if (rem && !lg)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "learner: no learning log for partition %d",
                       (int)partition);
    if (rem) {
        if (n > l->scratch_n) {
            free(l->scratch);
            l->scratch = rs_malloc(R * (size_t)n);
            l->scratch_n = n;
        }
        uint64_t end = rs_learnlog_end(lg);
        for (int i = 0; i < n; i++) {
            in[i].lrec = l->scratch + R * (size_t)i;
            in[i].lpos = RS_LPOS(partition, end + (uint64_t)i);
        }
    }
    rs_err_t err = rs_model_forward(m, in, n, out, contrib, flags);
    if (err)
        return rs_errf(errstr, errstr_size, err, "model forward: %s",
                       rs_err_str(err));
    if (rem) return rs_learnlog_append(lg, l->scratch, n, errstr, errstr_size);
    return RS_OK;
}

rs_err_t rs_learner_record(rs_learner_t *l, int32_t partition, uint64_t id,
                           const void **rec, const void **hist, int cap,
                           int *nh) {
    rs_learnlog_t *lg = NULL;
    uint64_t pos;
    if (rs_learner_find(l, partition, id, 0, &lg, &pos) != RS_OK)
        return RS_ERR_NOTFOUND;
    *rec = rs_learnlog_rec(lg, pos);
    int n = rs_learner_history(l, *rec);
    if (n > cap) n = cap;
    memcpy(hist, l->hist, sizeof(*hist) * (size_t)n);
    *nh = n;
    return RS_OK;
}
