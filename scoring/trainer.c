/* trainer.c -- online learning off the scoring thread (see trainer.h).
 *
 * Invariants:
 *  - The ring holds `cap` records; head (next write) and tail (next read)
 *    only grow; head - tail <= cap.  The scoring thread writes slots in
 *    [head, tail + cap) and moves head; the trainer reads [tail, head) and
 *    moves tail.  Both under `lock` (cheap next to one learning step);
 *    record bytes are copied outside it.
 *  - `mailbox` holds at most one published snapshot not yet taken; a newer
 *    one replaces (and releases) it.
 *  - T is touched only by the trainer thread once it runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scoring/trainer.h"

struct rs_trainer_s {
    rs_model_t *t;
    rs_model_conf_t conf;     /* T's settings (minimal buffers)           */
    rs_model_store_t *store;
    char save_path[512];
    int64_t publish_every, publish_interval_ms;

    size_t rsz;
    uint8_t *ring;            /* [cap][rsz]                               */
    uint64_t cap, head, tail;

    pthread_t thr;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* trainer: records, rollback or stop       */
    pthread_cond_t space;     /* scoring thread: free slots               */
    pthread_cond_t answer;    /* rollback requesters                      */
    int stop;

    rs_model_weights_t *mailbox;

    /* rollback request (one at a time, serialised by rb_busy) */
    int rb_busy, rb_pending, rb_done, rb_abandoned;
    char rb_version[RS_VERSION_MAX];
    rs_err_t rb_err;
    char rb_errstr[256];

    /* trainer-thread state */
    uint64_t next_number;     /* without a store                          */
    uint64_t since_publish;   /* updates since the last version           */
    int64_t last_publish_us;

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

/* New version of T: number, snapshot into the mailbox, file in the store.
 * Trainer thread (or the creator before the thread starts). */
static void rs_trainer_publish(rs_trainer_t *tr, int renumber) {
    char e2[256];
    if (renumber) {
        uint64_t n = tr->store ? rs_model_store_next(tr->store)
                               : tr->next_number++;
        rs_model_set_version(tr->t, n);
    }
    rs_model_weights_t *w = rs_model_weights_take(tr->t);
    int store_err = 0;
    if (tr->store &&
        rs_model_store_put(tr->store, tr->t, e2, sizeof(e2)) != RS_OK) {
        rs_error("trainer", "saving version %s: %s", rs_model_version(tr->t),
                 e2);
        store_err = 1;
    }
    pthread_mutex_lock(&tr->lock);
    rs_model_weights_t *old = tr->mailbox;
    tr->mailbox = w;
    tr->st.published++;
    tr->st.store_errors += (uint64_t)store_err;
    rs_strlcpy(tr->st.published_version, rs_model_version(tr->t),
               sizeof(tr->st.published_version));
    tr->st.published_at_ms = rs_clock_wall_ms();
    rs_model_stats(tr->t, &tr->st.model);
    pthread_mutex_unlock(&tr->lock);
    rs_model_weights_release(old);
    tr->since_publish = 0;
    tr->last_publish_us = rs_clock_mono_us();
    rs_info("trainer", "model version %s published", rs_model_version(tr->t));
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
    if (err == RS_OK && strcmp(rs_model_kind(m), rs_model_kind(tr->t))) {
        err = rs_errf(e2, sizeof(e2), RS_ERR_INVALID,
                      "version %s is a %s model, the service runs %s",
                      version, rs_model_kind(m), rs_model_kind(tr->t));
    }
    if (err == RS_OK) {
        /* The scorer must be able to use its snapshots. */
        rs_model_weights_t *w = rs_model_weights_take(m);
        rs_model_t *probe = rs_model_new_like(tr->t, NULL, e2, sizeof(e2));
        if (!probe || rs_model_weights_use(probe, w) != RS_OK)
            err = rs_errf(e2, sizeof(e2), RS_ERR_INVALID,
                          "version %s has another architecture than the "
                          "running model", version);
        rs_model_destroy(probe);
        rs_model_weights_release(w);
    }
    if (err == RS_OK) {
        rs_model_destroy(tr->t);
        tr->t = m;
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

#define RS_TRAINER_CHUNK 64

static void *rs_trainer_main(void *arg) {
    rs_trainer_t *tr = arg;
    pthread_mutex_lock(&tr->lock);
    for (;;) {
        if (tr->rb_pending) {
            rs_trainer_do_rollback(tr);
            continue;
        }
        uint64_t n = tr->head - tr->tail;
        if (n == 0) {
            if (tr->stop) break;
            /* Publish on time even when no record comes. */
            int64_t now = rs_clock_mono_us();
            if (tr->since_publish > 0 &&
                now - tr->last_publish_us >= tr->publish_interval_ms * 1000) {
                pthread_mutex_unlock(&tr->lock);
                rs_trainer_publish(tr, 1);
                pthread_mutex_lock(&tr->lock);
                continue;
            }
            struct timespec ts = rs_trainer_deadline(100000);
            pthread_cond_timedwait(&tr->work, &tr->lock, &ts);
            continue;
        }
        if (n > RS_TRAINER_CHUNK) n = RS_TRAINER_CHUNK;
        uint64_t first = tr->tail;
        pthread_mutex_unlock(&tr->lock);
        uint64_t ok = 0, bad = 0;
        int due = 0;
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *rec = tr->ring + ((first + i) % tr->cap) * tr->rsz;
            if (rs_model_learn_record(tr->t, rec) != RS_OK) {
                bad++;
                continue;
            }
            ok++;
            /* Exactly every publish_every updates. */
            if (++tr->since_publish >= (uint64_t)tr->publish_every) {
                rs_trainer_publish(tr, 1);
                due = 1;
            }
        }
        int64_t now = rs_clock_mono_us();
        if (tr->since_publish > 0 &&
            now - tr->last_publish_us >= tr->publish_interval_ms * 1000) {
            rs_trainer_publish(tr, 1);
            due = 1;
        }
        pthread_mutex_lock(&tr->lock);
        tr->tail += n;
        tr->st.learned += ok;
        tr->st.failed += bad;
        if (!due && ((tr->st.learned & 1023) < ok || n < RS_TRAINER_CHUNK))
            rs_model_stats(tr->t, &tr->st.model);
        pthread_cond_signal(&tr->space);
    }
    pthread_mutex_unlock(&tr->lock);
    return NULL;
}

/* ------------------------------------------------------------ public */

rs_trainer_t *rs_trainer_new(rs_model_t *t, const rs_model_conf_t *conf,
                             const char *save_path, rs_err_t *err_out,
                             char *errstr, size_t errstr_size) {
    rs_trainer_t *tr = rs_calloc(1, sizeof(*tr));
    rs_err_t err = RS_OK;
    tr->t = t;
    tr->conf = *conf;
    tr->publish_every = conf->publish_every > 0 ? conf->publish_every : 1;
    tr->publish_interval_ms =
        conf->publish_interval_ms > 0 ? conf->publish_interval_ms : 1000;
    if (save_path) rs_strlcpy(tr->save_path, save_path, sizeof(tr->save_path));
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->work, NULL);
    pthread_cond_init(&tr->space, NULL);
    pthread_cond_init(&tr->answer, NULL);
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
    tr->rsz = rs_model_record_size(t);
    tr->cap = conf->train_queue > 0 ? (uint64_t)conf->train_queue : 1;
    tr->ring = rs_aligned_calloc(tr->cap, tr->rsz);
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

size_t rs_trainer_record_size(const rs_trainer_t *tr) { return tr->rsz; }

void *rs_trainer_reserve(rs_trainer_t *tr, int max, int *n) {
    pthread_mutex_lock(&tr->lock);
    uint64_t free_n = tr->cap - (tr->head - tr->tail);
    uint64_t pos = tr->head % tr->cap;
    uint64_t contig = RS_MIN(free_n, tr->cap - pos);
    pthread_mutex_unlock(&tr->lock);
    if (contig > (uint64_t)max) contig = (uint64_t)max;
    *n = (int)contig;
    return contig ? tr->ring + pos * tr->rsz : NULL;
}

void rs_trainer_commit(rs_trainer_t *tr, int n) {
    if (n <= 0) return;
    pthread_mutex_lock(&tr->lock);
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
    rs_model_destroy(tr->t);
    rs_free(tr->ring);
    pthread_mutex_destroy(&tr->lock);
    pthread_cond_destroy(&tr->work);
    pthread_cond_destroy(&tr->space);
    pthread_cond_destroy(&tr->answer);
    free(tr);
}
