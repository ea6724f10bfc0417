/* pool.c -- fork-join worker pool (see pool.h).
 *
 * One job at a time: the owner publishes it under the lock (gen + 1),
 * wakes the threads and claims slices itself; every participant claims
 * the next slice under the lock until the job has none left, and the
 * last slice to finish wakes the owner. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"

struct rs_pool_s {
    int size;
    pthread_t *th;          /* [size - 1]                                */
    int nth;                /* started                                   */
    pthread_mutex_t lock;
    pthread_cond_t work_cv, done_cv;
    uint64_t gen;           /* job number (under lock)                   */
    int quit;
    /* the job of generation gen */
    rs_pool_fn *fn;
    void *opaque;
    int n, slices;
    int next;               /* next slice to claim                       */
    int left;               /* slices not finished                       */
};

/* Claim and run slices of job `job` until it has none left.  Claims are
 * taken under the lock (a few per batch): a thread that wakes late, after
 * its job ended, finds another generation and claims nothing. */
static void rs_pool_work(rs_pool_t *pool, uint64_t job) {
    pthread_mutex_lock(&pool->lock);
    while (pool->gen == job && pool->next < pool->slices) {
        int w = pool->next++;
        rs_pool_fn *fn = pool->fn;
        void *opaque = pool->opaque;
        int n = pool->n, s = pool->slices;
        pthread_mutex_unlock(&pool->lock);
        fn(opaque, rs_pool_lo(n, s, w), rs_pool_lo(n, s, w + 1), w);
        pthread_mutex_lock(&pool->lock);
        if (--pool->left == 0) pthread_cond_signal(&pool->done_cv);
    }
    pthread_mutex_unlock(&pool->lock);
}

static void *rs_pool_main(void *arg) {
    rs_pool_t *pool = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->quit && pool->gen == seen)
            pthread_cond_wait(&pool->work_cv, &pool->lock);
        if (pool->quit) break;
        seen = pool->gen;
        pthread_mutex_unlock(&pool->lock);
        rs_pool_work(pool, seen);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

rs_pool_t *rs_pool_new(int size, const char *name, rs_err_t *err,
                       char *errstr, size_t errstr_size) {
    if (size < 1 || size > RS_POOL_MAX) {
        if (err) *err = RS_ERR_CONFIG;
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "%d workers: must be 1..%d", size, RS_POOL_MAX);
        return NULL;
    }
    rs_pool_t *pool = rs_calloc(1, sizeof(*pool));
    pool->size = size;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    if (size > 1) pool->th = rs_calloc((size_t)(size - 1), sizeof(*pool->th));
    for (int i = 0; i < size - 1; i++) {
        int rc = pthread_create(&pool->th[i], NULL, rs_pool_main, pool);
        if (rc != 0) {
            if (err) *err = RS_ERR_NOMEM;
            rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                    "cannot start worker thread %d of %d: %s", i + 1, size,
                    strerror(rc));
            rs_pool_destroy(pool);
            return NULL;
        }
        pool->nth++;
        char tn[16]; /* the kernel's limit, NUL included: "<9>-<2>" */
        size_t nl = strnlen(name ? name : "rs-pool", 9);
        memcpy(tn, name ? name : "rs-pool", nl);
        tn[nl] = '-';
        tn[nl + 1] = (char)('0' + (i + 1) / 10 % 10);
        tn[nl + 2] = (char)('0' + (i + 1) % 10);
        tn[nl + 3] = '\0';
        pthread_setname_np(pool->th[i], tn);
    }
    if (err) *err = RS_OK;
    return pool;
}

void rs_pool_destroy(rs_pool_t *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->quit = 1;
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nth; i++) pthread_join(pool->th[i], NULL);
    pthread_cond_destroy(&pool->work_cv);
    pthread_cond_destroy(&pool->done_cv);
    pthread_mutex_destroy(&pool->lock);
    free(pool->th);
    free(pool);
}

int rs_pool_size(const rs_pool_t *pool) { return pool ? pool->size : 1; }

int rs_pool_run(rs_pool_t *pool, int n, int min_chunk, rs_pool_fn *fn,
                void *opaque) {
    if (n <= 0) return 0;
    int s = min_chunk > 0 ? n / min_chunk : n;
    if (s > rs_pool_size(pool)) s = rs_pool_size(pool);
    if (s <= 1) {
        fn(opaque, 0, n, 0);
        return 1;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->opaque = opaque;
    pool->n = n;
    pool->slices = s;
    pool->next = 0;
    pool->left = s;
    uint64_t job = ++pool->gen;
    /* wake only as many threads as there are slices beyond ours */
    if (s - 1 >= pool->nth) pthread_cond_broadcast(&pool->work_cv);
    else
        for (int i = 0; i < s - 1; i++) pthread_cond_signal(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
    rs_pool_work(pool, job);
    pthread_mutex_lock(&pool->lock);
    while (pool->left > 0) pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return s;
}
