/* test_store.c -- unit tests of the model store (model/store.c).
 *
 * put / list / prune / load round trips (both kinds, bit-identical
 * scores), version numbering (next, monotonic, named versions survive
 * save/load), malformed and missing versions, damaged files, foreign files
 * and leftovers of interrupted saves, open errors, and a lister racing a
 * writer (every listed file is whole). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model_int.h"
#include "rs_test_learn.h"

#define DIM 8
static const char *const names8[DIM] = {"f0", "f1", "f2", "f3",
                                        "f4", "f5", "f6", "f7"};
#define T0 1700000000000LL

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_store_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static rs_model_conf_t conf_lr(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR;
    c.batch_max = 16;
    c.replay = 0;
    c.average = 0;
    return c;
}

static rs_model_t *new_lr(void) {
    rs_model_conf_t c = conf_lr();
    char err[256] = "";
    rs_model_t *m = rs_model_new(&c, DIM, names8, err, sizeof(err));
    if (!m) fail_msg("rs_model_new: %s", err);
    return m;
}

/* n more labelled updates of an "lr" model on random rows (scored, its
 * records logged, labels learned through a learner of its own) */
static void train_lr(rs_model_t *m, int n, uint64_t seed) {
    rs_model_conf_t c = conf_lr();
    char err[256] = "";
    rs_test_learn_t *t = rs_test_learn_borrow(m, &c, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_borrow: %s", err);
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        float x[DIM];
        double s = 0;
        for (int k = 0; k < DIM; k++) {
            x[k] = (float)rs_rng_normal(&rng) * 3.0f + (float)k;
            s += (k & 1 ? 1 : -1) * (x[k] - k);
        }
        char id[32];
        snprintf(id, sizeof(id), "t%llu-%d", (unsigned long long)seed, i);
        assert_int_equal(rs_test_learn_score(t, id, T0 + i, x, NULL), RS_OK);
        rs_learner_res_t res;
        assert_int_equal(rs_test_learn_label(t, id, s > 0, &res), RS_OK);
        assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    }
    rs_test_learn_destroy(t);
}

static void probe_rows(float *x, int n) {
    rs_rng_t rng;
    rs_rng_seed(&rng, 4242);
    for (int i = 0; i < n * DIM; i++) x[i] = (float)(rs_rng_normal(&rng) * 4);
}

static void store_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int file_exists(const char *dir, const char *version) {
    char p[600];
    snprintf(p, sizeof(p), "%s/%s.rsm", dir, version);
    return access(p, F_OK) == 0;
}

/* ---------------------------------------------------------------- tests */

static void test_put_list_prune_load(void **state) {
    (void)state;
    char dir[400], err[256] = "", vers[6][RS_VERSION_MAX];
    store_dir(dir, sizeof(dir), "a/b/store"); /* parents created too */
    int64_t t_start = rs_clock_wall_ms();
    rs_model_store_t *st = rs_model_store_open(dir, 3, err, sizeof(err));
    if (!st) fail_msg("open: %s", err);
    assert_int_equal(rs_model_store_next(st), 1);
    rs_model_store_entry_t es[10];
    assert_int_equal(rs_model_store_list(st, es, 10), 0);

    enum { N = 50 };
    static float x[N * DIM], sc[6][N];
    probe_rows(x, N);
    rs_model_t *m = new_lr();
    for (int k = 1; k <= 5; k++) {
        train_lr(m, 10, (uint64_t)k);
        uint64_t n = rs_model_store_next(st);
        assert_int_equal(n, (uint64_t)k);
        rs_model_set_version(m, n);
        assert_int_equal(rs_model_version_number(m), n);
        assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
        rs_strlcpy(vers[k], rs_model_version(m), sizeof(vers[k]));
        assert_int_equal(rs_model_score(m, x, N, sc[k], NULL), RS_OK);
    }
    /* keep 3: versions 1 and 2 pruned, newest first */
    assert_false(file_exists(dir, vers[1]));
    assert_false(file_exists(dir, vers[2]));
    assert_true(file_exists(dir, vers[3]));
    int n = rs_model_store_list(st, es, 10);
    assert_int_equal(n, 3);
    int64_t now = rs_clock_wall_ms();
    for (int i = 0; i < 3; i++) {
        int k = 5 - i;
        assert_string_equal(es[i].version, vers[k]);
        assert_int_equal(es[i].number, (uint64_t)k);
        assert_int_equal(es[i].updates, (uint64_t)(10 * k));
        assert_true(es[i].saved_at_ms >= t_start - 2000 &&
                    es[i].saved_at_ms <= now + 2000);
        char p[2048];
        snprintf(p, sizeof(p), "%s/%s.rsm", dir, es[i].version);
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(es[i].bytes, (uint64_t)sb.st_size);
    }
    assert_int_equal(rs_model_store_list(st, es, 2), 2);
    assert_int_equal(es[0].number, 5);
    assert_int_equal(rs_model_store_list(st, es, 0), 0);
    assert_int_equal(rs_model_store_next(st), 6);

    /* a stored version scores bit for bit as when it was saved */
    for (int k = 3; k <= 5; k++) {
        rs_model_t *l = NULL;
        assert_int_equal(rs_model_store_load(st, vers[k], NULL, &l, err,
                                             sizeof(err)),
                         RS_OK);
        assert_string_equal(rs_model_version(l), vers[k]);
        assert_int_equal(rs_model_version_number(l), (uint64_t)k);
        static float s2[N];
        rs_model_score(l, x, N, s2, NULL);
        assert_memory_equal(s2, sc[k], sizeof(s2));
        rs_model_destroy(l);
    }
    /* with a conf: its buffer sizes, the file's version */
    rs_model_conf_t c = conf_lr();
    c.batch_max = 3;
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_store_load(st, vers[4], &c, &l, err, sizeof(err)),
                     RS_OK);
    assert_string_equal(rs_model_version(l), vers[4]);
    rs_model_destroy(l);

    /* pruned: not found, and the message says why */
    l = (rs_model_t *)0x1;
    assert_int_equal(rs_model_store_load(st, vers[1], NULL, &l, err, sizeof(err)),
                     RS_ERR_NOTFOUND);
    assert_null(l);
    assert_non_null(strstr(err, "pruned"));
    assert_non_null(strstr(err, vers[1]));

    /* the same version again replaces its file (a rollback publishes the
     * loaded version under its own name) */
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_store_list(st, es, 10), 3);
    assert_int_equal(rs_model_store_next(st), 6);

    /* a low number is kept when it is the one just saved, pruned later */
    rs_model_t *old = new_lr();
    train_lr(old, 3, 99);
    rs_model_set_version(old, 1);
    assert_int_equal(rs_model_store_put(st, old, err, sizeof(err)), RS_OK);
    assert_true(file_exists(dir, rs_model_version(old)));
    assert_int_equal(rs_model_store_list(st, es, 10), 4);
    assert_int_equal(es[3].number, 1);
    rs_model_set_version(m, rs_model_store_next(st));
    assert_int_equal(rs_model_version_number(m), 6);
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    assert_false(file_exists(dir, rs_model_version(old)));
    assert_int_equal(rs_model_store_list(st, es, 10), 3);
    assert_int_equal(es[0].number, 6);
    assert_int_equal(es[2].number, 4);

    rs_model_destroy(old);
    rs_model_destroy(m);
    rs_model_store_close(st);
    rs_model_store_close(NULL);
}

static void test_bad_versions(void **state) {
    (void)state;
    char dir[400], err[256];
    store_dir(dir, sizeof(dir), "bad");
    rs_model_store_t *st = rs_model_store_open(dir, 5, err, sizeof(err));
    assert_non_null(st);
    rs_model_t *m = new_lr();
    rs_model_set_version(m, 1);
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    /* a file outside the store that a traversal would reach */
    char outside[600];
    snprintf(outside, sizeof(outside), "%s/%s.rsm", tmpdir, rs_model_version(m));
    char e2[256];
    assert_int_equal(rs_model_save(m, outside, e2, sizeof(e2)), RS_OK);

    char traversal[RS_VERSION_MAX + 8];
    snprintf(traversal, sizeof(traversal), "../%s", rs_model_version(m));
    char longv[300];
    memset(longv, '1', sizeof(longv) - 1);
    memcpy(longv, "lr-00000000-", 12);
    longv[sizeof(longv) - 1] = '\0';
    const char *bad[] = {"", traversal, "lr-00000000-1/..", "a/b", "..",
                         "lr-0000000-1", "lr-0000000g-1", "LR-00000000-1",
                         "lr-00000000-", "lr-00000000-1x", "lr-00000000--1",
                         "lr-00000000-1.rsm.tmp", "-00000000-1", "lr_00000000_1",
                         "lr-00000000-1 ", "lr-00000000-12345678901234567890",
                         longv, NULL};
    for (int i = 0; i < (int)RS_ARRAY_LEN(bad); i++) {
        rs_model_t *l = (rs_model_t *)0x1;
        err[0] = '\0';
        rs_err_t e = rs_model_store_load(st, bad[i], NULL, &l, err, sizeof(err));
        if (e != RS_ERR_INVALID)
            fail_msg("'%s': expected RS_ERR_INVALID, got %s (%s)",
                     bad[i] ? bad[i] : "(null)", rs_err_str(e), err);
        assert_null(l);
        assert_non_null(strstr(err, "not a model version"));
    }
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_store_load(st, "lr-00000000-99", NULL, &l, err,
                                         sizeof(err)),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_model_store_load(st, "seq-0123abcd-7", NULL, &l, err,
                                         sizeof(err)),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_model_store_load(st, rs_model_version(m), NULL, &l, err,
                                         sizeof(err)),
                     RS_OK);
    rs_model_destroy(l);
    rs_model_destroy(m);
    rs_model_store_close(st);
}

static void test_files(void **state) {
    (void)state;
    char dir[400], err[256], p[700];
    store_dir(dir, sizeof(dir), "files");
    rs_model_store_t *st = rs_model_store_open(dir, 2, err, sizeof(err));
    assert_non_null(st);
    rs_model_t *m = new_lr();
    for (int k = 0; k < 3; k++) {
        train_lr(m, 5, 10 + (uint64_t)k);
        rs_model_set_version(m, rs_model_store_next(st));
        assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    }
    char v3[RS_VERSION_MAX];
    rs_strlcpy(v3, rs_model_version(m), sizeof(v3));
    rs_model_store_close(st);

    /* foreign files: ignored, never pruned; a leftover tmp of a crashed
     * save: left alone by readers, removed by the next put */
    const char *foreign[] = {"README", "notes.rsm", "lr-zz.rsm",
                             "lr-00000000-1.rsm.bak"};
    for (size_t i = 0; i < RS_ARRAY_LEN(foreign); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, foreign[i]);
        FILE *fp = fopen(p, "w");
        fputs("x", fp);
        fclose(fp);
    }
    snprintf(p, sizeof(p), "%s/lr-00000000-9.rsm.tmp", dir);
    FILE *fp = fopen(p, "w");
    fputs("half a model", fp);
    fclose(fp);
    /* reopen: numbering continues from the directory */
    st = rs_model_store_open(dir, 2, err, sizeof(err));
    assert_non_null(st);
    char tmpf[700];
    rs_strlcpy(tmpf, p, sizeof(tmpf));
    assert_int_equal(rs_model_store_next(st), 4);
    rs_model_store_entry_t es[8];
    assert_int_equal(rs_model_store_list(st, es, 8), 2);
    assert_string_equal(es[0].version, v3);
    assert_int_equal(access(tmpf, F_OK), 0);

    /* the newest file deleted by hand: its number is not handed out again
     * by this store */
    snprintf(p, sizeof(p), "%s/%s.rsm", dir, v3);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(rs_model_store_next(st), 4);
    assert_int_equal(rs_model_store_list(st, es, 8), 1);

    /* a damaged file: listed (0 updates), its load says corrupt */
    snprintf(p, sizeof(p), "%s/lr-00000000-50.rsm", dir);
    fp = fopen(p, "w");
    fputs("RSMODEL", fp);
    fclose(fp);
    int n = rs_model_store_list(st, es, 8);
    assert_int_equal(n, 2);
    assert_string_equal(es[0].version, "lr-00000000-50");
    assert_int_equal(es[0].updates, 0);
    assert_int_equal(rs_model_store_next(st), 51);
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_store_load(st, "lr-00000000-50", NULL, &l, err,
                                         sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_null(l);
    /* a file renamed by hand holds another version than its name */
    char src[700];
    snprintf(src, sizeof(src), "%s/%s.rsm", dir, es[1].version);
    snprintf(p, sizeof(p), "%s/lr-00000000-60.rsm", dir);
    assert_int_equal(link(src, p), 0);
    assert_int_equal(rs_model_store_load(st, "lr-00000000-60", NULL, &l, err,
                                         sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "holds version"));
    assert_null(l);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lr-00000000-50.rsm", dir);
    unlink(p);

    /* a put prunes only versions, and down to keep */
    rs_model_set_version(m, rs_model_store_next(st));
    assert_int_equal(rs_model_version_number(m), 51);
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_store_list(st, es, 8), 2);
    assert_int_not_equal(access(tmpf, F_OK), 0);
    for (size_t i = 0; i < RS_ARRAY_LEN(foreign); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, foreign[i]);
        assert_int_equal(access(p, F_OK), 0);
    }
    rs_model_destroy(m);
    rs_model_store_close(st);
}

static void test_open_errors(void **state) {
    (void)state;
    char dir[400], err[256] = "";
    assert_null(rs_model_store_open("", 3, err, sizeof(err)));
    assert_non_null(strstr(err, "store_dir"));
    assert_null(rs_model_store_open(NULL, 3, err, sizeof(err)));
    store_dir(dir, sizeof(dir), "k0");
    assert_null(rs_model_store_open(dir, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "keep_versions"));
    /* a regular file, and a path below one */
    store_dir(dir, sizeof(dir), "plainfile");
    FILE *fp = fopen(dir, "w");
    fclose(fp);
    assert_null(rs_model_store_open(dir, 3, err, sizeof(err)));
    assert_non_null(strstr(err, "not a directory"));
    char sub[500];
    snprintf(sub, sizeof(sub), "%s/below", dir);
    assert_null(rs_model_store_open(sub, 3, err, sizeof(err)));
    assert_non_null(strstr(err, sub));
    /* trailing slashes are fine */
    store_dir(dir, sizeof(dir), "slash///");
    rs_model_store_t *st = rs_model_store_open(dir, 1, err, sizeof(err));
    assert_non_null(st);
    rs_model_t *m = new_lr();
    rs_model_set_version(m, 3);
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    rs_model_store_entry_t e;
    assert_int_equal(rs_model_store_list(st, &e, 1), 1);
    assert_int_equal(e.number, 3);
    rs_model_destroy(m);
    rs_model_store_close(st);
}

/* Named versions survive save/load; learning no longer renumbers them. */
static void test_named_versions(void **state) {
    (void)state;
    rs_model_conf_t c = conf_lr();
    c.publish_every = 10;
    char err[256], path[400];
    rs_model_t *m = rs_model_new(&c, DIM, names8, err, sizeof(err));
    assert_int_equal(rs_model_version_number(m), 0);
    train_lr(m, 25, 1);
    assert_int_equal(rs_model_version_number(m), 2); /* 25 / 10 */
    rs_model_set_version(m, 7);
    char hex[16];
    unsigned long long n;
    assert_int_equal(sscanf(rs_model_version(m), "lr-%8[0-9a-f]-%llu", hex, &n), 2);
    assert_int_equal(n, 7);
    train_lr(m, 30, 2);
    assert_int_equal(rs_model_version_number(m), 7);
    snprintf(path, sizeof(path), "%s/named.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_load(path, NULL, &l, err, sizeof(err)), RS_OK);
    assert_string_equal(rs_model_version(l), rs_model_version(m));
    train_lr(l, 30, 3);
    assert_int_equal(rs_model_version_number(l), 7);
    rs_model_stats_t st;
    rs_model_stats(l, &st);
    assert_int_equal(st.updates, 85);
    /* bit 63 is the file's flag, not part of a number */
    rs_model_set_version(l, (1ull << 63) | 5);
    assert_int_equal(rs_model_version_number(l), 5);
    rs_model_destroy(l);
    rs_model_destroy(m);
}

/* A "seq" model through the store, with feature names long enough that
 * the listing's first read of the file head is not enough. */
static void test_seq_store(void **state) {
    (void)state;
    enum { D = 90 };
    static char nbuf[D][64];
    const char *nm[D];
    for (int i = 0; i < D; i++) {
        snprintf(nbuf[i], sizeof(nbuf[i]),
                 "a_rather_long_feature_name_to_fill_the_file_head_%03d", i);
        nm[i] = nbuf[i];
    }
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = 8;
    c.seq.d_model = 8;
    c.seq.history = 4;
    c.seq.experts = 4;
    c.seq.top_k = 2;
    c.seq.expert_hidden = 8;
    c.seq.buckets = 16;
    c.seq.max_entities = 16;
    char err[256], dir[400];
    rs_model_t *m = rs_model_new(&c, D, nm, err, sizeof(err));
    if (!m) fail_msg("%s", err);
    rs_test_learn_t *t = rs_test_learn_borrow(m, &c, err, sizeof(err));
    if (!t) fail_msg("%s", err);
    static float x[40][D];
    rs_model_input_t in[40];
    rs_model_output_t out[40];
    char ids[40][16], ents[40][16];
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < D; k++) x[i][k] = (float)((i * 7 + k * 3) % 11) - 5;
        snprintf(ids[i], sizeof(ids[i]), "s%d", i);
        snprintf(ents[i], sizeof(ents[i]), "card-%d", i % 3);
        memset(&in[i], 0, sizeof(in[i]));
        in[i].event_id = ids[i];
        in[i].entity_id = ents[i];
        in[i].event_time_ms = T0 + i * 1000;
        in[i].x = x[i];
    }
    assert_int_equal(rs_test_learn_forward(t, in, 40, out, NULL,
                                           RS_MODEL_FWD_REMEMBER),
                     RS_OK);
    for (int i = 0; i < 30; i++)
        assert_int_equal(rs_test_learn_label(t, ids[i], i % 4 == 0, NULL),
                         RS_OK);
    rs_test_learn_destroy(t);
    store_dir(dir, sizeof(dir), "seqstore");
    rs_model_store_t *st = rs_model_store_open(dir, 4, err, sizeof(err));
    assert_non_null(st);
    rs_model_set_version(m, rs_model_store_next(st));
    assert_int_equal(rs_model_store_put(st, m, err, sizeof(err)), RS_OK);
    rs_model_store_entry_t e;
    assert_int_equal(rs_model_store_list(st, &e, 1), 1);
    assert_true(e.bytes > 4096);
    assert_int_equal(e.updates, 30);
    assert_int_equal(e.number, 1);
    assert_int_equal(strncmp(e.version, "seq-", 4), 0);
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_store_load(st, e.version, NULL, &l, err, sizeof(err)),
                     RS_OK);
    assert_string_equal(rs_model_kind(l), "seq");
    assert_int_equal(rs_model_version_number(l), 1);
    /* the loaded version scores a new stream like the saved model on
     * fresh caches: both through a scorer using their snapshots */
    rs_model_weights_t *w1 = rs_model_weights_take(m), *w2 = rs_model_weights_take(l);
    rs_model_t *s1 = rs_model_new_like(m, NULL, err, sizeof(err));
    rs_model_t *s2 = rs_model_new_like(l, NULL, err, sizeof(err));
    assert_non_null(s1);
    assert_non_null(s2);
    assert_int_equal(rs_model_weights_use(s1, w1), RS_OK);
    assert_int_equal(rs_model_weights_use(s2, w2), RS_OK);
    rs_model_weights_release(w1);
    rs_model_weights_release(w2);
    rs_model_output_t o1[40], o2[40];
    assert_int_equal(rs_model_forward(s1, in, 40, o1, NULL, 0), RS_OK);
    assert_int_equal(rs_model_forward(s2, in, 40, o2, NULL, 0), RS_OK);
    for (int i = 0; i < 40; i++)
        assert_memory_equal(&o1[i].score, &o2[i].score, sizeof(float));
    assert_string_equal(rs_model_version(s2), e.version);
    rs_model_destroy(s1);
    rs_model_destroy(s2);
    rs_model_destroy(l);
    rs_model_destroy(m);
    rs_model_store_close(st);
}

/* A lister racing a writer: every listed entry is a whole file. */
typedef struct race_s {
    rs_model_store_t *st;
    _Atomic int done;   /* written by the main thread, read by the lister */
    int lists, entries;
} race_t;

static void *race_lister(void *arg) {
    race_t *r = arg;
    rs_model_store_entry_t es[16];
    while (!atomic_load(&r->done)) {
        int n = rs_model_store_list(r->st, es, 16);
        if (n > 4) return (void *)1;  /* keep 3 + the one just saved */
        for (int i = 0; i < n; i++) {
            if (es[i].updates == 0) return (void *)2; /* torn file */
            if (i && es[i].number >= es[i - 1].number) return (void *)3;
        }
        r->lists++;
        r->entries += n;
    }
    return NULL;
}

static void test_list_while_put(void **state) {
    (void)state;
    char dir[400], err[256];
    store_dir(dir, sizeof(dir), "race");
    race_t r = {0};
    r.st = rs_model_store_open(dir, 3, err, sizeof(err));
    assert_non_null(r.st);
    rs_model_t *m = new_lr();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_lister, &r), 0);
    for (int k = 0; k < 40; k++) {
        train_lr(m, 2, 500 + (uint64_t)k);
        rs_model_set_version(m, rs_model_store_next(r.st));
        assert_int_equal(rs_model_store_put(r.st, m, err, sizeof(err)), RS_OK);
    }
    atomic_store(&r.done, 1);
    void *rc = NULL;
    pthread_join(th, &rc);
    assert_null(rc);
    print_message("lister: %d listings, %d entries while 40 versions were "
                  "saved\n", r.lists, r.entries);
    assert_int_equal(rs_model_store_next(r.st), 41);
    rs_model_destroy(m);
    rs_model_store_close(r.st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_list_prune_load),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_named_versions),
        cmocka_unit_test(test_seq_store),
        cmocka_unit_test(test_list_while_put),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
