/* trainer.c -- online learning off the scoring thread (see trainer.h).
 *
 * Invariants:
 *  - The ring holds `cap` messages; head (next write) and tail (next read)
 *    only grow; head - tail <= cap.  The scoring thread writes slots in
 *    [head, tail + cap) and moves head; the trainer reads [tail, head) and
 *    moves tail.  Both under `lock` (cheap next to one learning step);
 *    messages are read outside it.
 *  - `mailbox` holds at most one published snapshot not yet taken; a newer
 *    one replaces (and releases) it.
 *  - T, the learner and the logs' resolver side are touched only by the
 *    trainer thread once it runs.
 *  - Maturity work (rs_learner_advance) runs in chunks of RS_TRAINER_MATURE
 *    records between message chunks, so a backlog (a horizon that just
 *    became known) never holds labels up for long.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/rul.h"
#include "scoring/trainer.h"

#define RS_TRAINER_PARTS 4096 /* partitions with a watermark              */

struct rs_trainer_s {
    rs_model_t *t;
    rs_model_conf_t conf;     /* T's settings (minimal buffers)           */
    rs_model_store_t *store;
    char save_path[512];
    char delays_path[512];
    double caught_threshold;
    int64_t publish_every, publish_interval_ms;
    rs_trainer_hooks_t hooks; /* model sync (zero: none)                  */

    rs_trainer_msg_t *ring;   /* [cap]                                    */
    uint64_t cap, head, tail;
    int detached;             /* DETACH messages served                   */

    pthread_t thr;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* trainer: records, rollback or stop       */
    pthread_cond_t space;     /* scoring thread: free slots               */
    pthread_cond_t answer;    /* rollback requesters                      */
    int stop;

    rs_model_weights_t *mailbox;
    rs_rul_t *rul;            /* trainer thread: learns (NULL: off)       */
    rs_rul_t *rul_pub;        /* under lock: as of the last version       */
    uint64_t rul_version;     /* under lock: copies published             */

    /* rollback request (one at a time, serialised by rb_busy) */
    int rb_busy, rb_pending, rb_done, rb_abandoned;
    char rb_version[RS_VERSION_MAX];
    rs_err_t rb_err;
    char rb_errstr[256];

    /* trainer-thread state */
    rs_learner_t *lr;
    int64_t *wm;              /* [RS_TRAINER_PARTS] latest watermark       */
    uint8_t *mature;          /* [RS_TRAINER_PARTS] 1: maturity work left */
    double psi;               /* the scorer's drift, latest                */
    uint64_t next_number;     /* without a store                          */
    uint64_t since_publish;   /* updates since the last version           */
    uint64_t updates_seen;    /* T's updates at the last count            */
    int64_t last_publish_us;
    uint64_t caught;
    char caught_id[RS_ID_MAX];
    rs_auc_t auc;

    /* maintenance rehearsal state (rs_trainer_rehearsal) */
    void *reh_pub;            /* under lock: as of the last failure        */
    size_t reh_len, reh_cap;  /* under lock                               */
    uint64_t fail_committed;  /* under lock: FAILURE messages committed    */
    uint64_t fail_handled;    /* under lock: ... resolved (in reh_pub)     */
    void *reh_in;             /* under lock: a restore waiting (REHEARSAL) */
    size_t reh_in_len;
    int64_t *reh_in_end;      /* [reh_in_nend] restored logs' ends         */
    int32_t reh_in_nend;

    rs_trainer_stats_t st;    /* under lock                               */
};

/* The CLOCK_REALTIME deadline `us` microseconds from now, for
 * pthread_cond_timedwait. */
static struct timespec rs_trainer_deadline(int64_t us) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(us / 1000000);
    ts.tv_nsec += (long)(us % 1000000) * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* ----------------------------------------------------------- publish */

/* Counters of T, the learner and the logs into st (trainer thread). */
static void rs_trainer_snapshot(rs_trainer_t *tr) {
    rs_model_stats_t ms;
    rs_learner_stats_t ls;
    rs_model_stats(tr->t, &ms);
    rs_learner_stats(tr->lr, &ls);
    uint64_t recs = 0, bytes = 0, pend = 0;
    for (int32_t p = 0; p < RS_TRAINER_PARTS; p++) {
        rs_learnlog_t *lg = rs_learner_log(tr->lr, p);
        if (!lg) continue;
        rs_learnlog_stats_t s;
        rs_learnlog_stats(lg, &s);
        recs += s.end - s.first;
        bytes += s.bytes;
        pend += s.end - s.cursor;
    }
    pthread_mutex_lock(&tr->lock);
    tr->st.model = ms;
    tr->st.learner = ls;
    tr->st.caught = tr->caught;
    rs_strlcpy(tr->st.caught_id, tr->caught_id, sizeof(tr->st.caught_id));
    tr->st.log_records = recs;
    tr->st.log_bytes = bytes;
    tr->st.log_pending = pend;
    tr->st.auc = tr->auc;
    tr->st.delays = *rs_learner_delays(tr->lr, 0);
    pthread_mutex_unlock(&tr->lock);
}

/* New version of T: number, snapshot into the mailbox, file in the store.
 * Trainer thread (or the creator before the thread starts). */
static void rs_trainer_publish(rs_trainer_t *tr, int renumber) {
    char e2[256];
    if (renumber) {
        uint64_t n = tr->store ? rs_model_store_next(tr->store)
                               : tr->next_number++;
        rs_model_set_version(tr->t, n);
        if (tr->hooks.tag[0]) rs_model_set_version_tag(tr->t, tr->hooks.tag);
    }
    rs_model_weights_t *w = rs_model_weights_take(tr->t);
    int store_err = 0;
    if (tr->delays_path[0] &&
        rs_learner_delays_save(tr->lr, tr->delays_path, e2, sizeof(e2)))
        rs_warn("trainer", "%s", e2);
    if (tr->store &&
        rs_model_store_put(tr->store, tr->t, e2, sizeof(e2)) != RS_OK) {
        rs_error("trainer", "saving version %s: %s", rs_model_version(tr->t),
                 e2);
        store_err = 1;
    }
    pthread_mutex_lock(&tr->lock);
    if (tr->rul) {
        rs_rul_copy(tr->rul_pub, tr->rul);
        tr->rul_version++;
    }
    rs_model_weights_t *old = tr->mailbox;
    tr->mailbox = w;
    tr->st.published++;
    tr->st.store_errors += (uint64_t)store_err;
    rs_strlcpy(tr->st.published_version, rs_model_version(tr->t),
               sizeof(tr->st.published_version));
    tr->st.published_at_ms = rs_clock_wall_ms();
    pthread_mutex_unlock(&tr->lock);
    rs_trainer_snapshot(tr);
    rs_model_weights_release(old);
    tr->since_publish = 0;
    tr->last_publish_us = rs_clock_mono_us();
    rs_info("trainer", "model version %s published", rs_model_version(tr->t));
    if (tr->hooks.published)
        tr->hooks.published(tr->hooks.opaque, tr->t, tr->store && !store_err);
}

/* Learn from m from now on (a rollback, a combination): same kind and
 * architecture as T, records the learner can use.  On success T is m
 * (the old one destroyed); on failure m stays the caller's.  Trainer
 * thread. */
static rs_err_t rs_trainer_replace(rs_trainer_t *tr, rs_model_t *m,
                                   const char *version, char *e2,
                                   size_t e2_size) {
    rs_err_t err = RS_OK;
    if (strcmp(rs_model_kind(m), rs_model_kind(tr->t)))
        return rs_errf(e2, e2_size, RS_ERR_INVALID,
                       "version %s is a %s model, the service runs %s",
                       version, rs_model_kind(m), rs_model_kind(tr->t));
    /* The scorer must be able to use its snapshots. */
    rs_model_weights_t *w = rs_model_weights_take(m);
    rs_model_t *probe = rs_model_new_like(tr->t, NULL, e2, e2_size);
    if (!probe || rs_model_weights_use(probe, w) != RS_OK)
        err = rs_errf(e2, e2_size, RS_ERR_INVALID,
                      "version %s has another architecture than the "
                      "running model", version);
    rs_model_destroy(probe);
    rs_model_weights_release(w);
    if (err == RS_OK && rs_learner_set_model(tr->lr, m) != RS_OK)
        err = rs_errf(e2, e2_size, RS_ERR_INVALID,
                      "version %s writes other learning records than the "
                      "running model", version);
    if (err != RS_OK) return err;
    rs_model_destroy(tr->t);
    tr->t = m;
    /* count the new T's updates from its own updates */
    rs_model_stats_t ms;
    rs_model_stats(tr->t, &ms);
    tr->updates_seen = ms.updates;
    return RS_OK;
}

/* Serve a rollback request: load the version as the new T.  Trainer
 * thread; called with lock held, returns with it held. */
static void rs_trainer_do_rollback(rs_trainer_t *tr) {
    char version[RS_VERSION_MAX], e2[256] = "";
    rs_strlcpy(version, tr->rb_version, sizeof(version));
    tr->rb_pending = 0;
    pthread_mutex_unlock(&tr->lock);
    rs_model_t *m = NULL;
    rs_model_conf_t conf;
    rs_err_t err;
    if (!tr->store) {
        err = rs_errf(e2, sizeof(e2), RS_ERR_STATE,
                      "no model store configured (model.store_dir)");
    } else {
        /* The file's architecture and settings; only the (unused) buffers
         * stay minimal, as for the T the service created. */
        conf = tr->conf;
        err = rs_model_store_load(tr->store, version, &conf, &m, e2,
                                  sizeof(e2));
    }
    if (err == RS_OK &&
        (err = rs_trainer_replace(tr, m, version, e2, sizeof(e2))) == RS_OK) {
        m = NULL;
        rs_warn("trainer", "rolled back to model version %s", version);
        rs_trainer_publish(tr, 0);
    }
    rs_model_destroy(m);
    pthread_mutex_lock(&tr->lock);
    tr->rb_err = err;
    rs_strlcpy(tr->rb_errstr, e2, sizeof(tr->rb_errstr));
    tr->rb_done = 1;
    if (err == RS_OK) tr->st.rollbacks++;
    if (tr->rb_abandoned) { /* its requester timed out and left */
        tr->rb_abandoned = 0;
        tr->rb_busy = 0;
    }
    pthread_cond_broadcast(&tr->answer);
}

/* ------------------------------------------------------------ thread */

#define RS_TRAINER_CHUNK 64    /* messages per pass                      */
#define RS_TRAINER_MATURE 256  /* maturity negatives per pass            */

static void rs_trainer_resolved(void *opaque, float score, int label) {
    rs_trainer_t *tr = opaque;
    rs_auc_add(&tr->auc, score, label);
}

/* Count T's new updates toward the next version; publish when due. */
static void rs_trainer_count(rs_trainer_t *tr) {
    rs_model_stats_t ms;
    rs_model_stats(tr->t, &ms);
    /* (T replaced by one with fewer updates: nothing new to count) */
    uint64_t d = ms.updates > tr->updates_seen ? ms.updates - tr->updates_seen
                                               : 0;
    tr->updates_seen = ms.updates;
    tr->since_publish += d;
    if (tr->since_publish >= (uint64_t)tr->publish_every)
        rs_trainer_publish(tr, 1);
}

/* The learner's rehearsal state into reh_pub; `failures` more FAILURE
 * messages are resolved (trainer thread). */
static void rs_trainer_reh_publish(rs_trainer_t *tr, uint64_t failures) {
    size_t len = rs_learner_rehearsal_size(tr->lr);
    void *nb = NULL, *old = NULL;
    pthread_mutex_lock(&tr->lock);
    int grow = len > tr->reh_cap;
    pthread_mutex_unlock(&tr->lock);
    if (grow) nb = rs_malloc(len + 64 * 8); /* room for a few failures */
    pthread_mutex_lock(&tr->lock);
    if (nb) {
        old = tr->reh_pub;
        tr->reh_pub = nb;
        tr->reh_cap = len + 64 * 8;
    }
    if (len) rs_learner_rehearsal_save(tr->lr, tr->reh_pub);
    tr->reh_len = len;
    tr->fail_handled += failures;
    pthread_cond_broadcast(&tr->answer);
    pthread_mutex_unlock(&tr->lock);
    free(old);
}

/* A restore queued by rs_trainer_rehearsal_restore (trainer thread). */
static void rs_trainer_reh_load(rs_trainer_t *tr) {
    pthread_mutex_lock(&tr->lock);
    void *buf = tr->reh_in;
    size_t len = tr->reh_in_len;
    int64_t *end = tr->reh_in_end;
    int32_t nend = tr->reh_in_nend;
    tr->reh_in = NULL;
    tr->reh_in_end = NULL;
    pthread_mutex_unlock(&tr->lock);
    char e2[256];
    if (buf && rs_learner_rehearsal_load(tr->lr, buf, len, end, nend, e2,
                                         sizeof(e2)) != RS_OK)
        rs_warn("trainer", "%s: not restored (the rehearsal starts empty)",
                e2);
    free(buf);
    free(end);
    rs_trainer_reh_publish(tr, 0);
}

/* One message (trainer thread). */
static void rs_trainer_handle(rs_trainer_t *tr, const rs_trainer_msg_t *m) {
    const int32_t p = m->partition;
    tr->psi = m->psi;
    switch (m->kind) {
    case RS_TRAINER_LABEL: {
        rs_learner_res_t res;
        rs_learner_label(tr->lr, p, &m->lb, m->t, m->psi, &res);
        if (res.outcome == RS_LEARNER_LEARNED ||
            res.outcome == RS_LEARNER_CORRECTED) {
            rs_auc_add(&tr->auc, res.score, res.y);
            if (res.y && res.score >= tr->caught_threshold) {
                tr->caught++;
                if (!tr->caught_id[0])
                    rs_strlcpy(tr->caught_id, m->lb.event_id,
                               sizeof(tr->caught_id));
            }
        }
        rs_trainer_count(tr);
        break;
    }
    case RS_TRAINER_WATERMARK:
        rs_learner_observe_to(tr->lr, p, m->log_end);
        if (p >= 0 && p < RS_TRAINER_PARTS && m->t > tr->wm[p]) {
            tr->wm[p] = m->t;
            tr->mature[p] = 1;
        }
        break;
    case RS_TRAINER_ATTACH:
        if (m->log && rs_learner_attach(tr->lr, m->log) != RS_OK)
            rs_error("trainer", "learning log of partition %d not attached "
                     "(one is already, or its records differ)", (int)p);
        else if (m->log)
            rs_learner_observe_from(tr->lr, p, m->log_end);
        if (p >= 0 && p < RS_TRAINER_PARTS) tr->mature[p] = 1;
        break;
    case RS_TRAINER_FAILURE:
    case RS_TRAINER_REPAIR: {
        /* maintenance (the service's alerts.c sends them) */
        uint64_t ent = rs_hash_str(m->lb.entity_id);
        int64_t t = m->t ? m->t : m->lb.label_time_ms;
        if (m->kind == RS_TRAINER_FAILURE)
            rs_learner_failure(tr->lr, p, ent, t, m->lb.label_time_ms, m->psi,
                               NULL);
        else
            rs_learner_repair(tr->lr, p, ent, t, m->psi, NULL);
        if (m->kind == RS_TRAINER_FAILURE) rs_trainer_reh_publish(tr, 1);
        rs_trainer_count(tr);
        break;
    }
    case RS_TRAINER_REHEARSAL:
        rs_trainer_reh_load(tr);
        break;
    case RS_TRAINER_DETACH:
        rs_learner_detach(tr->lr, p);
        if (p >= 0 && p < RS_TRAINER_PARTS) {
            tr->wm[p] = INT64_MIN;
            tr->mature[p] = 0;
        }
        pthread_mutex_lock(&tr->lock);
        tr->detached++;
        pthread_cond_broadcast(&tr->answer);
        pthread_mutex_unlock(&tr->lock);
        break;
    }
}

/* Maturity work of one pass: up to RS_TRAINER_MATURE records over the
 * partitions that have some.  Returns 1 if work is left. */
static int rs_trainer_mature(rs_trainer_t *tr) {
    int left = 0, budget = RS_TRAINER_MATURE;
    for (int32_t p = 0; p < RS_TRAINER_PARTS && budget > 0; p++) {
        if (!tr->mature[p]) continue;
        int n = rs_learner_advance(tr->lr, p, tr->wm[p], tr->psi, budget,
                                   rs_trainer_resolved, tr);
        budget -= n;
        if (n == 0) tr->mature[p] = 0;
        else left = 1;
        rs_trainer_count(tr);
    }
    return left;
}

/* A combination is due (model sync): T as a version first, then learn
 * from what the hook makes of it and the other instances' versions. */
static void rs_trainer_sync(rs_trainer_t *tr) {
    if (tr->since_publish > 0) rs_trainer_publish(tr, 1);
    rs_model_t *m = tr->hooks.combine(tr->hooks.opaque, tr->t);
    if (!m) return;
    char version[RS_VERSION_MAX], e2[256];
    rs_strlcpy(version, rs_model_version(m), sizeof(version));
    if (rs_trainer_replace(tr, m, version, e2, sizeof(e2)) != RS_OK) {
        rs_error("trainer", "model sync: %s", e2);
        rs_model_destroy(m);
        return;
    }
    pthread_mutex_lock(&tr->lock);
    tr->st.combined++;
    pthread_mutex_unlock(&tr->lock);
    rs_trainer_publish(tr, 0);
}

static void *rs_trainer_main(void *arg) {
    rs_trainer_t *tr = arg;
    pthread_setname_np(pthread_self(), "rs-trainer"); /* top, perf, idle_cpu.py */
    int64_t snap_us = 0;
    pthread_mutex_lock(&tr->lock);
    for (;;) {
        if (tr->rb_pending) {
            rs_trainer_do_rollback(tr);
            continue;
        }
        uint64_t n = tr->head - tr->tail;
        const int stopping = tr->stop;
        if (n == 0 && stopping) break;
        uint64_t first = tr->tail;
        if (n > RS_TRAINER_CHUNK) n = RS_TRAINER_CHUNK;
        pthread_mutex_unlock(&tr->lock);
        for (uint64_t i = 0; i < n; i++)
            rs_trainer_handle(tr, &tr->ring[(first + i) % tr->cap]);
        /* stopping: the labels queued are learned; maturity resumes from
         * the logs at the next start */
        int more = !stopping && rs_trainer_mature(tr);
        int64_t now = rs_clock_mono_us();
        /* publish on time even when nothing comes */
        if (tr->since_publish > 0 &&
            now - tr->last_publish_us >= tr->publish_interval_ms * 1000)
            rs_trainer_publish(tr, 1);
        if (!stopping && tr->hooks.due && tr->hooks.due(tr->hooks.opaque))
            rs_trainer_sync(tr);
        if (now - snap_us >= 200000) {
            rs_trainer_snapshot(tr);
            snap_us = now;
        }
        pthread_mutex_lock(&tr->lock);
        tr->tail += n;
        if (n) pthread_cond_signal(&tr->space);
        if (n == 0 && !more && !tr->stop && !tr->rb_pending &&
            tr->head == tr->tail) {
            struct timespec ts = rs_trainer_deadline(100000);
            pthread_cond_timedwait(&tr->work, &tr->lock, &ts);
        }
    }
    pthread_mutex_unlock(&tr->lock);
    rs_trainer_snapshot(tr);
    return NULL;
}

/* ------------------------------------------------------------ public */

rs_trainer_t *rs_trainer_new(rs_model_t *t, const rs_model_conf_t *conf,
                             const rs_trainer_opts_t *opts, rs_err_t *err_out,
                             char *errstr, size_t errstr_size) {
    rs_trainer_t *tr = rs_calloc(1, sizeof(*tr));
    rs_err_t err = RS_OK;
    tr->t = t;
    tr->conf = *conf;
    tr->publish_every = conf->publish_every > 0 ? conf->publish_every : 1;
    tr->publish_interval_ms =
        conf->publish_interval_ms > 0 ? conf->publish_interval_ms : 1000;
    if (opts && opts->save_path)
        rs_strlcpy(tr->save_path, opts->save_path, sizeof(tr->save_path));
    if (opts && opts->delays_path)
        rs_strlcpy(tr->delays_path, opts->delays_path,
                   sizeof(tr->delays_path));
    tr->caught_threshold = opts ? opts->caught_threshold : 0.5;
    if (opts && opts->hooks) tr->hooks = *opts->hooks;
    tr->lr = rs_learner_new(t, conf);
    if (opts && opts->failure_horizon_ms > 0)
        rs_learner_set_failure_horizon(tr->lr, opts->failure_horizon_ms);
    if (opts && opts->rehearse_n0 > 0) {
        rs_learner_set_rehearsal(tr->lr, opts->rehearse_n0);
    }
    if (opts && opts->rul_cap_ms > 0) {
        tr->rul = rs_rul_new(rs_model_dim(t), opts->rul_cap_ms);
        tr->rul_pub = rs_rul_new(rs_model_dim(t), opts->rul_cap_ms);
        rs_learner_set_rul(tr->lr, tr->rul);
    }
    tr->wm = rs_calloc(RS_TRAINER_PARTS, sizeof(*tr->wm));
    for (int i = 0; i < RS_TRAINER_PARTS; i++) tr->wm[i] = INT64_MIN;
    tr->mature = rs_calloc(RS_TRAINER_PARTS, 1);
    rs_auc_init(&tr->auc);
    if (tr->delays_path[0]) {
        rs_hist_t *a = rs_malloc(2 * sizeof(rs_hist_t));
        char e2[600];
        if (rs_learner_delays_load(tr->delays_path, &a[0], &a[1], e2,
                                   sizeof(e2)) != RS_OK)
            rs_warn("trainer", "%s", e2);
        else
            rs_learner_add_delays(tr->lr, &a[0], &a[1]);
        free(a);
    }
    {
        rs_model_stats_t ms;
        rs_model_stats(t, &ms);
        tr->updates_seen = ms.updates;
    }
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->work, NULL);
    pthread_cond_init(&tr->space, NULL);
    pthread_cond_init(&tr->answer, NULL);
    if (opts && opts->rehearse_n0 > 0)
        rs_trainer_reh_publish(tr, 0); /* the empty state: reh_cap > 0 */
    if (conf->store_dir[0]) {
        tr->store = rs_model_store_open(conf->store_dir,
                                        (int)conf->keep_versions, errstr,
                                        errstr_size);
        if (!tr->store) {
            err = RS_ERR_IO;
            goto fail;
        }
    }
    tr->next_number = rs_model_version_number(t) + 1;
    tr->cap = conf->train_queue > 0 ? (uint64_t)conf->train_queue : 1;
    tr->ring = rs_aligned_calloc(tr->cap, sizeof(*tr->ring));
    tr->st.capacity = tr->cap;
    /* The starting model is version 1 of a new lineage unless it already
     * has a number (a loaded model keeps its name). */
    rs_trainer_publish(tr, rs_model_version_number(t) == 0);
    if (pthread_create(&tr->thr, NULL, rs_trainer_main, tr)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                      "cannot start the trainer thread");
        goto fail;
    }
    tr->running = 1;
    if (err_out) *err_out = RS_OK;
    return tr;
fail:
    if (err_out) *err_out = err;
    tr->t = NULL; /* stays the caller's on failure */
    rs_trainer_destroy(tr);
    return NULL;
}

rs_trainer_msg_t *rs_trainer_reserve(rs_trainer_t *tr, int max, int *n) {
    pthread_mutex_lock(&tr->lock);
    uint64_t free_n = tr->cap - (tr->head - tr->tail);
    uint64_t pos = tr->head % tr->cap;
    uint64_t contig = RS_MIN(free_n, tr->cap - pos);
    pthread_mutex_unlock(&tr->lock);
    if (contig > (uint64_t)max) contig = (uint64_t)max;
    *n = (int)contig;
    return contig ? tr->ring + pos : NULL;
}

void rs_trainer_commit(rs_trainer_t *tr, int n) {
    if (n <= 0) return;
    pthread_mutex_lock(&tr->lock);
    for (int i = 0; i < n; i++) /* the failures a checkpoint waits for */
        tr->fail_committed +=
            tr->ring[(tr->head + (uint64_t)i) % tr->cap].kind ==
            RS_TRAINER_FAILURE;
    tr->head += (uint64_t)n;
    tr->st.queued += (uint64_t)n;
    pthread_cond_signal(&tr->work);
    pthread_mutex_unlock(&tr->lock);
}

void rs_trainer_wait_space(rs_trainer_t *tr, int timeout_ms) {
    struct timespec ts = rs_trainer_deadline((int64_t)timeout_ms * 1000);
    pthread_mutex_lock(&tr->lock);
    if (tr->head - tr->tail >= tr->cap)
        pthread_cond_timedwait(&tr->space, &tr->lock, &ts);
    pthread_mutex_unlock(&tr->lock);
}

rs_err_t rs_trainer_detach(rs_trainer_t *tr, int32_t partition,
                           int timeout_ms) {
    int n;
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    rs_trainer_msg_t *m;
    while (!(m = rs_trainer_reserve(tr, 1, &n))) {
        if (rs_clock_mono_us() >= deadline) return RS_ERR_TIMEOUT;
        rs_trainer_wait_space(tr, 10);
    }
    memset(m, 0, sizeof(*m));
    m->kind = RS_TRAINER_DETACH;
    m->partition = partition;
    pthread_mutex_lock(&tr->lock);
    int want = tr->detached + 1;
    pthread_mutex_unlock(&tr->lock);
    rs_trainer_commit(tr, 1);
    pthread_mutex_lock(&tr->lock);
    while (tr->detached < want && tr->running) {
        int64_t left = deadline - rs_clock_mono_us();
        if (left <= 0) break;
        struct timespec ts = rs_trainer_deadline(left);
        pthread_cond_timedwait(&tr->answer, &tr->lock, &ts);
    }
    rs_err_t err = tr->detached >= want || !tr->running ? RS_OK
                                                        : RS_ERR_TIMEOUT;
    pthread_mutex_unlock(&tr->lock);
    return err;
}

int rs_trainer_rul(rs_trainer_t *tr, rs_rul_t *dst, uint64_t *seen) {
    int got = 0;
    pthread_mutex_lock(&tr->lock);
    if (tr->rul_pub && tr->rul_version != *seen &&
        rs_rul_copy(dst, tr->rul_pub) == RS_OK) {
        *seen = tr->rul_version;
        got = 1;
    }
    pthread_mutex_unlock(&tr->lock);
    return got;
}

size_t rs_trainer_rehearsal(rs_trainer_t *tr, void *buf, size_t cap,
                            int *current) {
    pthread_mutex_lock(&tr->lock);
    size_t len = tr->reh_len;
    if (len && len <= cap) memcpy(buf, tr->reh_pub, len);
    if (current) /* (rehearsal off: nothing to wait for) */
        *current = !tr->reh_cap || tr->fail_handled >= tr->fail_committed;
    pthread_mutex_unlock(&tr->lock);
    return len;
}

int rs_trainer_rehearsal_wait(rs_trainer_t *tr, int timeout_ms) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    pthread_mutex_lock(&tr->lock);
    while (tr->reh_cap && tr->fail_handled < tr->fail_committed &&
           tr->running) {
        int64_t left = deadline - rs_clock_mono_us();
        if (left <= 0) break;
        struct timespec ts = rs_trainer_deadline(left);
        pthread_cond_timedwait(&tr->answer, &tr->lock, &ts);
    }
    int ok = !tr->reh_cap || tr->fail_handled >= tr->fail_committed;
    pthread_mutex_unlock(&tr->lock);
    return ok;
}

void rs_trainer_rehearsal_restore(rs_trainer_t *tr, const void *buf,
                                  size_t len, const int64_t *end,
                                  int32_t nend) {
    if (!tr->reh_cap) return; /* rehearsal off (its state is published
                               * from the start when on) */
    void *b = rs_malloc(len ? len : 1);
    if (len) memcpy(b, buf, len);
    int64_t *e = rs_malloc((size_t)(nend > 0 ? nend : 1) * sizeof(*e));
    if (nend > 0) memcpy(e, end, (size_t)nend * sizeof(*e));
    pthread_mutex_lock(&tr->lock);
    free(tr->reh_in); /* a second restore replaces the first */
    free(tr->reh_in_end);
    tr->reh_in = b;
    tr->reh_in_len = len;
    tr->reh_in_end = e;
    tr->reh_in_nend = nend > 0 ? nend : 0;
    pthread_mutex_unlock(&tr->lock);
    int n;
    rs_trainer_msg_t *m;
    while (!(m = rs_trainer_reserve(tr, 1, &n))) rs_trainer_wait_space(tr, 10);
    memset(m, 0, sizeof(*m));
    m->kind = RS_TRAINER_REHEARSAL;
    rs_trainer_commit(tr, 1);
}

rs_model_weights_t *rs_trainer_take(rs_trainer_t *tr) {
    pthread_mutex_lock(&tr->lock);
    rs_model_weights_t *w = tr->mailbox;
    tr->mailbox = NULL;
    pthread_mutex_unlock(&tr->lock);
    return w;
}

rs_err_t rs_trainer_rollback(rs_trainer_t *tr, const char *version,
                             int timeout_ms, char *errstr,
                             size_t errstr_size) {
    if (!version || !version[0] || strlen(version) >= RS_VERSION_MAX)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "bad model version name");
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    pthread_mutex_lock(&tr->lock);
    while (tr->rb_busy && rs_clock_mono_us() < deadline) {
        pthread_mutex_unlock(&tr->lock);
        struct timespec d = {0, 5000000L};
        nanosleep(&d, NULL);
        pthread_mutex_lock(&tr->lock);
    }
    if (tr->rb_busy || !tr->running || tr->stop) {
        pthread_mutex_unlock(&tr->lock);
        return rs_errf(errstr, errstr_size, RS_ERR_TIMEOUT,
                       tr->rb_busy ? "another rollback is in progress"
                                   : "the trainer is stopping");
    }
    tr->rb_busy = 1;
    tr->rb_pending = 1;
    tr->rb_done = 0;
    rs_strlcpy(tr->rb_version, version, sizeof(tr->rb_version));
    pthread_cond_signal(&tr->work);
    while (!tr->rb_done) {
        int64_t left = deadline - rs_clock_mono_us();
        if (left <= 0) break;
        struct timespec ts = rs_trainer_deadline(left);
        pthread_cond_timedwait(&tr->answer, &tr->lock, &ts);
    }
    rs_err_t err;
    if (!tr->rb_done) {
        /* The request stays queued; the trainer serves it later. */
        tr->rb_abandoned = 1;
        err = rs_errf(errstr, errstr_size, RS_ERR_TIMEOUT,
                      "rollback to %s not done within %d ms (still queued)",
                      version, timeout_ms);
    } else {
        err = tr->rb_err;
        if (err != RS_OK)
            rs_errf(errstr, errstr_size, err, "%s", tr->rb_errstr);
        tr->rb_busy = 0;
    }
    pthread_mutex_unlock(&tr->lock);
    return err;
}

int rs_trainer_list(rs_trainer_t *tr, rs_model_store_entry_t *out, int max) {
    if (!tr->store) return 0;
    /* The store serialises its own callers (put vs list). */
    return rs_model_store_list(tr->store, out, max);
}

void rs_trainer_stats(rs_trainer_t *tr, rs_trainer_stats_t *st) {
    pthread_mutex_lock(&tr->lock);
    *st = tr->st;
    st->depth = tr->head - tr->tail;
    pthread_mutex_unlock(&tr->lock);
}

rs_err_t rs_trainer_stop(rs_trainer_t *tr, int save, char *errstr,
                         size_t errstr_size) {
    if (!tr->running) return RS_OK;
    pthread_mutex_lock(&tr->lock);
    tr->stop = 1;
    pthread_cond_signal(&tr->work);
    pthread_mutex_unlock(&tr->lock);
    pthread_join(tr->thr, NULL);
    tr->running = 0;
    if (tr->since_publish > 0) rs_trainer_publish(tr, 1);
    /* A rollback requested during the stop gets its answer. */
    pthread_mutex_lock(&tr->lock);
    if (tr->rb_busy && !tr->rb_done) {
        tr->rb_err = RS_ERR_STATE;
        rs_strlcpy(tr->rb_errstr, "the service is stopping",
                   sizeof(tr->rb_errstr));
        tr->rb_done = 1;
        tr->rb_pending = 0;
        if (tr->rb_abandoned) tr->rb_busy = tr->rb_abandoned = 0;
        pthread_cond_broadcast(&tr->answer);
    }
    pthread_mutex_unlock(&tr->lock);
    if (save && tr->save_path[0]) {
        rs_err_t err = rs_model_save(tr->t, tr->save_path, errstr,
                                     errstr_size);
        if (err != RS_OK) return err;
        rs_info("trainer", "model %s saved to %s", rs_model_version(tr->t),
                tr->save_path);
    }
    return RS_OK;
}

void rs_trainer_destroy(rs_trainer_t *tr) {
    if (!tr) return;
    char e2[256];
    rs_trainer_stop(tr, 0, e2, sizeof(e2));
    /* Let a requester still waiting on `answer` leave before freeing. */
    pthread_mutex_lock(&tr->lock);
    while (tr->rb_busy && tr->rb_done) {
        pthread_mutex_unlock(&tr->lock);
        struct timespec d = {0, 1000000L};
        nanosleep(&d, NULL);
        pthread_mutex_lock(&tr->lock);
    }
    pthread_mutex_unlock(&tr->lock);
    rs_model_weights_release(tr->mailbox);
    rs_model_store_close(tr->store);
    rs_learner_destroy(tr->lr);
    free(tr->reh_pub);
    free(tr->reh_in);
    free(tr->reh_in_end);
    rs_rul_destroy(tr->rul);
    rs_rul_destroy(tr->rul_pub);
    rs_model_destroy(tr->t);
    rs_free(tr->ring);
    free(tr->wm);
    free(tr->mature);
    pthread_mutex_destroy(&tr->lock);
    pthread_cond_destroy(&tr->work);
    pthread_cond_destroy(&tr->space);
    pthread_cond_destroy(&tr->answer);
    free(tr);
}
