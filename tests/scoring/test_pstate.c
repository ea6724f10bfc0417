/* test_pstate.c -- partition-local state: a partition's entity state
 * leaves one engine and arrives in another exactly (features, sequence
 * model caches, duplicate window), through the stream codecs and the
 * partition checkpoint file; malformed input is refused and never
 * half-loaded.
 *
 *   test_features_part_moves   the cards preset over 3 partitions: after
 *                              partition 1 moves from A to B (B never saw
 *                              it), every later event's ENTITY features
 *                              on B equal A's bit for bit; labels of
 *                              moved events find them; drop forgets it
 *   test_features_part_corrupt head, layout, truncation: refused, the
 *                              partition dropped, the others intact
 *   test_pstate_file_roundtrip save -> load into fresh handles: the same
 *                              bytes per store (features, caches, dedup)
 *                              and the positions; a corrupt file refused
 *                              with nothing loaded
 *   test_dedup_part            write_part / merge / drop by partition
 *   test_maint_part            the maintenance machines (alerts.h) move
 *                              with partition 0's checkpoint: on arrival
 *                              they decide as on an instance that never
 *                              moved them (open episode not alerted again,
 *                              debounce goes on, cool-down holds); drop
 *                              forgets them (partition 1's stay); a
 *                              damaged or newer maintenance section is
 *                              refused by name and the features loaded; a
 *                              format-1 file still loads; changelog
 *                              records 'A' restore a machine, a damaged
 *                              one is skipped
 *   test_maint_idle            a machine idle for more than key_ttl of its
 *                              partition's event time is forgotten (its
 *                              open episode too: it alerts again as a new
 *                              machine; exactly key_ttl is kept), not while
 *                              a failure report of it waits (placed at its
 *                              last reading); the forgotten ones are
 *                              remembered for tombstones with their
 *                              partition; an 'A' tombstone forgets the
 *                              machine of its own partition only
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/learnlog.h"
#include "scoring/pstate.h"
#include "scoring/trainer.h"
#include "tests/support/rs_test_eng.h"

#define T0 1767225600000LL
#define NPART 3
#define NENT 24

static rs_event_t mkev(int i) {
    rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "tx-%d", i);
    snprintf(ev.type, sizeof(ev.type), "card_tx");
    snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", i % NENT);
    snprintf(ev.counterparty_id, sizeof(ev.counterparty_id), "m-%d", i % 7);
    ev.event_time_ms = T0 + (int64_t)i * 7 * 60000;
    ev.amount = 3.0 + (double)((i * 37) % 200);
    return ev;
}

/* The partition of event i: its entity's, as Kafka keys by entity. */
static int32_t part_of(int i) { return (i % NENT) % NPART; }

static rs_features_t *mkfeat(void) {
    return rs_test_eng_features(0, 3 * 86400000LL);
}

static int is_entity_feature(const rs_features_t *f, int i) {
    const char *n = rs_features_name(f, i);
    return !strncmp(n, "ent_", 4) || !strncmp(n, "cal_", 4);
}

static void process(rs_features_t *f, int i, float *x) {
    rs_event_t ev = mkev(i);
    rs_features_set_partition(f, part_of(i));
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
}

static void label(rs_features_t *f, int i, rs_err_t want) {
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    snprintf(lb.event_id, sizeof(lb.event_id), "tx-%d", i);
    snprintf(lb.entity_id, sizeof(lb.entity_id), "card-%d", i % NENT);
    lb.value = 1.0;
    lb.label_time_ms = mkev(i).event_time_ms + 3600000;
    assert_int_equal(rs_features_label(f, &lb), want);
}

static void *part_bytes(const rs_features_t *f, int32_t p, size_t *len,
                        uint64_t *nk) {
    assert_int_equal(rs_features_part_write(f, p, NULL, 0, len, NULL),
                     RS_ERR_TOOBIG);
    void *b = malloc(*len);
    size_t got = 0;
    assert_int_equal(rs_features_part_write(f, p, b, *len, &got, nk), RS_OK);
    assert_int_equal(got, *len);
    return b;
}

static void test_features_part_moves(void **state) {
    (void)state;
    rs_features_t *a = mkfeat(), *b = mkfeat();
    int dim = rs_features_dim(a);
    float xa[RS_FEATURES_MAX_DIM], xb[RS_FEATURES_MAX_DIM];
    /* A sees everything; B the partitions 0 and 2 only */
    for (int i = 0; i < 400; i++) {
        process(a, i, xa);
        if (part_of(i) != 1) process(b, i, xb);
        if (i % 9 == 0 && i > 0) { /* labels of recent events */
            label(a, i - 5, RS_OK);
            if (part_of(i - 5) != 1) label(b, i - 5, RS_OK);
        }
    }
    /* partition 1 moves to B */
    size_t len;
    uint64_t nk = 0, nk2 = 0;
    void *s = part_bytes(a, 1, &len, &nk);
    assert_true(nk == NENT / NPART);
    char err[256];
    assert_int_equal(rs_features_part_read(b, 1, s, len, &nk2, err,
                                           sizeof(err)), RS_OK);
    assert_int_equal(nk2, nk);
    /* the same stream serialized from B: the same bytes (slot order may
     * differ: compare the sizes and the entity count) */
    size_t len2;
    uint64_t nk3;
    void *s2 = part_bytes(b, 1, &len2, &nk3);
    assert_int_equal(len2, len);
    assert_int_equal(nk3, nk);
    free(s2);
    /* labels of partition 1's past events now find them on B */
    label(a, 397 - 12, part_of(385) == 1 ? RS_OK : RS_OK);
    label(b, 385, RS_OK);
    int checked = 0;
    for (int i = 400; i < 700; i++) {
        process(a, i, xa);
        process(b, i, xb);
        if (part_of(i) != 1) continue;
        for (int k = 0; k < dim; k++)
            if (is_entity_feature(a, k) &&
                memcmp(&xa[k], &xb[k], sizeof(float)))
                fail_msg("event %d feature %s: %.9g on A, %.9g on B", i,
                         rs_features_name(a, k), (double)xa[k],
                         (double)xb[k]);
        checked++;
    }
    assert_true(checked > 50);
    /* drop: partition 1's entities are new again on A */
    rs_features_stats_t st;
    rs_features_stats(a, &st);
    uint64_t before = st.entity_keys, dropped = 0;
    assert_int_equal(rs_features_part_drop(a, 1, &dropped), RS_OK);
    assert_int_equal(dropped, nk);
    rs_features_stats(a, &st);
    assert_int_equal(st.entity_keys, before - nk);
    uint32_t flags = 0;
    rs_event_t ev = mkev(700 + 1); /* card-5: partition 2 */
    int i1 = 700;
    while (part_of(i1) != 1) i1++;
    ev = mkev(i1);
    rs_features_set_partition(a, 1);
    assert_int_equal(rs_features_process(a, &ev, xa, &flags), RS_OK);
    assert_true(flags & RS_FEATURES_FLAG_NEW_ENTITY);
    label(a, 385, RS_ERR_NOTFOUND); /* its index entry went too */
    int32_t parts[8];
    assert_int_equal(rs_features_part_list(b, parts, 8), NPART);
    free(s);
    rs_features_destroy(a);
    rs_features_destroy(b);
}

static void test_features_part_corrupt(void **state) {
    (void)state;
    rs_features_t *a = mkfeat(), *b = mkfeat();
    float x[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < 120; i++) {
        process(a, i, x);
        process(b, i, x);
    }
    size_t len;
    uint64_t nk;
    uint8_t *s = part_bytes(a, 2, &len, &nk);
    char err[256];
    rs_features_stats_t st0, st;
    rs_features_stats(b, &st0);
    /* bad head */
    uint8_t *c = malloc(len);
    memcpy(c, s, len);
    c[0] = 9;
    assert_int_equal(rs_features_part_read(b, 2, c, len, NULL, err,
                                           sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "partition 2"));
    rs_features_stats(b, &st);
    assert_int_equal(st.entity_keys, st0.entity_keys); /* refused early */
    /* another layout: the fingerprint */
    memcpy(c, s, len);
    c[8] ^= 1;
    assert_int_equal(rs_features_part_read(b, 2, c, len, NULL, err,
                                           sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "layout"));
    /* truncated in a key record: partition 2 dropped, the rest intact */
    assert_int_equal(rs_features_part_read(b, 2, s, len - 7, NULL, err,
                                           sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "dropped"));
    rs_features_stats(b, &st);
    assert_int_equal(st.entity_keys, st0.entity_keys - nk);
    /* a wrong record type */
    memcpy(c, s, len);
    c[16] = 77;
    assert_int_equal(rs_features_part_read(b, 2, c, len, NULL, err,
                                           sizeof(err)), RS_ERR_CORRUPT);
    /* and the good one loads */
    assert_int_equal(rs_features_part_read(b, 2, s, len, NULL, err,
                                           sizeof(err)), RS_OK);
    rs_features_stats(b, &st);
    assert_int_equal(st.entity_keys, st0.entity_keys);
    /* no move during a checkpoint */
    char path[128];
    snprintf(path, sizeof(path), "/tmp/rs_test_pstate_%d.ckpt", (int)getpid());
    assert_int_equal(rs_features_checkpoint_begin(b, path, NULL, 0, err,
                                                  sizeof(err)), RS_OK);
    assert_int_equal(rs_features_part_drop(b, 2, NULL), RS_ERR_STATE);
    rs_features_checkpoint_abort(b);
    free(c);
    free(s);
    rs_features_destroy(a);
    rs_features_destroy(b);
}

/* ----------------------------------------------------- whole stores */

#define DIM 3
static const char *const names[DIM] = {"a", "b", "c"};

static rs_model_t *mkmodel(void) {
    return rs_test_eng_model(NULL, DIM, names, 4, 64);
}

/* Score event i on m (its learning record at log position i of its
 * partition). */
static void score(rs_model_t *m, int i) {
    uint8_t rec[4096];
    assert_true(rs_model_lrec_size(m) <= sizeof(rec));
    rs_event_t ev = mkev(i);
    float x[DIM] = {(float)(i % 5), 1.0f, (float)(i % 3)};
    rs_model_input_t in;
    rs_model_output_t out;
    memset(&in, 0, sizeof(in));
    in.event_id = ev.id;
    in.entity_id = ev.entity_id;
    in.counterparty_id = ev.counterparty_id;
    in.event_time_ms = ev.event_time_ms;
    in.amount = (float)ev.amount;
    in.x = x;
    in.lrec = rec;
    in.lpos = RS_LPOS(part_of(i), i);
    assert_int_equal(rs_model_forward(m, &in, 1, &out, NULL,
                                      RS_MODEL_FWD_REMEMBER), RS_OK);
}

static int sel_p(void *o, uint64_t key, int32_t p) {
    (void)key;
    return p == *(int32_t *)o;
}

typedef rs_test_eng_t stores_t; /* tests/support/rs_test_eng.h */

static void stores_new(stores_t *s, const char *dir) {
    char err[256];
    s->f = mkfeat();
    s->m = mkmodel();
    s->d = rs_dedup_new(1024, 86400000LL, err, sizeof(err));
    assert_non_null(s->d);
    s->ps = rs_pstate_new(dir, s->f, s->m, s->d, err, sizeof(err));
    if (!s->ps) fail_msg("%s", err);
}

static void test_pstate_file_roundtrip(void **state) {
    (void)state;
    char dir[] = "/tmp/rs_test_pstate_XXXXXX";
    assert_non_null(mkdtemp(dir));
    stores_t a, b;
    stores_new(&a, dir);
    stores_new(&b, dir);
    float x[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < 200; i++) {
        process(a.f, i, x);
        score(a.m, i);
        uint64_t h;
        rs_event_t ev = mkev(i);
        rs_dedup_check_part(a.d, rs_dedup_key(ev.entity_id, ev.id),
                            ev.event_time_ms, part_of(i), &h);
        rs_dedup_rec_t r;
        memset(&r, 0, sizeof(r));
        r.has = 1;
        r.score = (float)i / 200.0f;
        snprintf(r.model_version, sizeof(r.model_version), "v-%d", i / 50);
        rs_dedup_set(a.d, h, &r);
    }
    char err[300];
    rs_pstate_pos_t pos = {123, 45, 67, -1}, got;
    assert_int_equal(rs_pstate_peek(a.ps, 1, &got, err, sizeof(err)),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_pstate_save(a.ps, 1, &pos, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_pstate_peek(b.ps, 1, &got, err, sizeof(err)), RS_OK);
    assert_int_equal(got.events, 123);
    uint64_t nk = 0;
    assert_int_equal(rs_pstate_load(b.ps, 1, &got, &nk, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(got.labels, 45);
    assert_int_equal(got.log_end, 67);
    assert_int_equal(nk, NENT / NPART);
    size_t la, lb;
    uint8_t *ba = rs_test_eng_bytes(&a, 1, &la), *bb = rs_test_eng_bytes(&b, 1, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    /* the other partitions did not come */
    size_t l0;
    uint8_t *b0 = rs_test_eng_bytes(&b, 0, &l0);
    free(b0);
    rs_dedup_stats_t ds;
    rs_dedup_stats(b.d, &ds);
    assert_true(ds.entries > 0 && ds.entries < 200);
    /* drop: nothing of partition 1 left */
    rs_pstate_drop(b.ps, 1, &nk);
    assert_int_equal(nk, NENT / NPART);
    rs_dedup_stats(b.d, &ds);
    assert_int_equal(ds.entries, 0);
    assert_int_equal(rs_model_caches_size_sel(b.m, sel_p, &(int32_t){1}),
                     rs_model_caches_size_sel(b.m, sel_p, &(int32_t){7}));
    /* corrupt files: refused, nothing loaded */
    char path[400];
    snprintf(path, sizeof(path), "%s/p1/checkpoint", dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 200, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, 200, SEEK_SET);
    fputc(ch ^ 0x40, fp);
    fclose(fp);
    assert_int_equal(rs_pstate_load(b.ps, 1, &got, &nk, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "checksum"));
    rs_features_stats_t fs;
    rs_features_stats(b.f, &fs);
    assert_int_equal(fs.entity_keys, 0);
    assert_int_equal(truncate(path, 50), 0);
    assert_int_equal(rs_pstate_load(b.ps, 1, &got, &nk, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "shorter"));
    rs_test_eng_free(&a);
    rs_test_eng_free(&b);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_file_parse(void **state) {
    (void)state;
    uint8_t buf[RS_PSTATE_FILE_HDR + 8];
    memset(buf, 0xab, sizeof(buf));
    rs_pstate_pos_t pos = {1, 2, 3, 4};
    rs_pstate_file_seal(buf, 5, &pos, 3, 2, 3, 0);
    rs_pstate_file_t pf;
    char err[256];
    assert_int_equal(rs_pstate_file_parse(buf, sizeof(buf), &pf, err,
                                          sizeof(err)), RS_OK);
    assert_int_equal(pf.partition, 5);
    assert_int_equal(pf.caches_len, 2);
    assert_int_equal(rs_pstate_file_parse(buf, sizeof(buf) - 1, &pf, err,
                                          sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "truncated"));
    buf[RS_PSTATE_FILE_HDR + 1] ^= 1;
    assert_int_equal(rs_pstate_file_parse(buf, sizeof(buf), &pf, err,
                                          sizeof(err)), RS_ERR_CORRUPT);
    buf[0] = 'X';
    assert_int_equal(rs_pstate_file_parse(buf, sizeof(buf), &pf, err,
                                          sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "magic"));
    assert_int_equal(rs_pstate_file_parse(NULL, 0, &pf, err, sizeof(err)),
                     RS_ERR_CORRUPT);
}

static void test_dedup_part(void **state) {
    (void)state;
    char err[256];
    rs_dedup_t *a = rs_dedup_new(64, 86400000LL, err, sizeof(err));
    rs_dedup_t *b = rs_dedup_new(64, 86400000LL, err, sizeof(err));
    uint64_t h;
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        rs_dedup_check_part(a, rs_dedup_key("c", id), T0 + i, i % 4, &h);
        if (i % 4 != 1) rs_dedup_check_part(b, rs_dedup_key("c", id), T0 + i,
                                            i % 4, &h);
    }
    size_t n = rs_dedup_size_part(a, 1), len;
    uint8_t *buf = malloc(n);
    assert_int_equal(rs_dedup_write_part(a, 1, buf, n, &len), RS_OK);
    uint64_t added = 0;
    assert_int_equal(rs_dedup_merge(b, buf, len, &added, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(added, 10);
    assert_int_equal(rs_dedup_check_part(b, rs_dedup_key("c", "e5"), T0 + 50,
                                         1, &h), 1); /* a duplicate now */
    assert_int_equal(rs_dedup_merge(b, buf, len, &added, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(added, 0); /* present: kept */
    assert_int_equal(rs_dedup_drop_part(b, 1), 10);
    assert_int_equal(rs_dedup_check_part(b, rs_dedup_key("c", "e5"), T0 + 50,
                                         1, &h), 0);
    buf[0] ^= 1;
    assert_int_equal(rs_dedup_merge(b, buf, len, &added, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    free(buf);
    rs_dedup_destroy(a);
    rs_dedup_destroy(b);
}

/* ------------------------------------------------ maintenance machines */

static int64_t g_mttl; /* features.key_ttl of maint_new's alerts; 0: never */

typedef struct maint_s {
    rs_features_t *f;
    rs_model_t *m;
    rs_trainer_t *tr;
    rs_alerts_t *al;
    rs_pstate_t *ps;
} maint_t;

static void maint_new(maint_t *t, const char *dir) {
    char e[512];
    memset(t, 0, sizeof(*t));
    t->f = mkfeat();
    t->m = mkmodel();
    t->tr = rs_test_eng_trainer(DIM, names);
    rs_maint_conf_t mc;
    rs_test_eng_maint_conf(&mc);
    mc.alert_cooldown = 10 * 3600000LL;
    mc.alert_escalation = 1;
    /* cold start on: its own policy's entries move too */
    t->al = rs_test_eng_alerts(&mc, g_mttl, t->f, t->m, t->tr);
    t->ps = rs_pstate_new(dir, t->f, t->m, NULL, e, sizeof(e));
    if (!t->ps) fail_msg("%s", e);
    rs_pstate_set_alerts(t->ps, t->al);
}

static void maint_free(maint_t *t) {
    rs_pstate_destroy(t->ps);
    rs_alerts_destroy(t->al);
    rs_trainer_destroy(t->tr);
    rs_model_destroy(t->m);
    rs_features_destroy(t->f);
}

/* Machine k ("m<k>") on partition k % 2 reads score p at hour h: 'A'
 * alert, '.' not. */
static char mread(maint_t *t, int k, int h, float p) {
    rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "r-%d-%d", k, h);
    snprintf(ev.type, sizeof(ev.type), "sensor");
    snprintf(ev.entity_id, sizeof(ev.entity_id), "m%d", k);
    ev.event_time_ms = T0 + (int64_t)h * 3600000;
    float x[RS_FEATURES_MAX_DIM] = {0};
    int64_t rul;
    double as;
    rs_alerts_event(t->al, 0, &ev, k % 2);
    rs_decision_t d = rs_alerts_score(t->al, 0, -1, &ev, k % 2, p, x, "v1",
                                      &rul, &as);
    rs_alerts_batch_end(t->al);
    return d == RS_DECISION_ALERT ? 'A' : '.';
}

static int has_machine(maint_t *t, const char *m) {
    return rs_alerts_machine_write(t->al, m, NULL, 0) > 0;
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, fp), *len);
    fclose(fp);
    return b;
}

static void write_file(const char *dir, const void *b, size_t len) {
    char path[700];
    snprintf(path, sizeof(path), "%s/p0", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/p0/checkpoint", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
}

static void test_maint_part(void **state) {
    (void)state;
    char d1[] = "/tmp/rs_test_pmaint_XXXXXX", d2[] = "/tmp/rs_test_pmaint_XXXXXX";
    char d3[] = "/tmp/rs_test_pmaint_XXXXXX", d4[] = "/tmp/rs_test_pmaint_XXXXXX";
    assert_non_null(mkdtemp(d1));
    assert_non_null(mkdtemp(d2));
    assert_non_null(mkdtemp(d3));
    assert_non_null(mkdtemp(d4));
    static maint_t src, ref, dst;
    maint_new(&src, d1);
    maint_new(&ref, d2);
    /* the same readings on the source and on a reference that keeps
     * them: m0 (p0) alerted, episode open; m1 (p1) likewise; m2 (p0) 1
     * of 2 readings above; m4 (p0) alerted, then closed: cool-down */
    char dec[2][16];
    maint_t *both[2] = {&src, &ref};
    for (int k = 0; k < 2; k++) {
        char *o = dec[k];
        *o++ = mread(both[k], 0, 0, .9f);
        *o++ = mread(both[k], 0, 1, .9f);
        *o++ = mread(both[k], 1, 0, .9f);
        *o++ = mread(both[k], 1, 1, .9f);
        *o++ = mread(both[k], 2, 1, .9f);
        *o++ = mread(both[k], 4, 0, .9f);
        *o++ = mread(both[k], 4, 1, .9f);
        *o++ = mread(both[k], 4, 2, .1f);
        *o++ = mread(both[k], 4, 3, .1f);
        *o = '\0';
    }
    assert_string_equal(dec[0], ".A.A..A..");
    assert_string_equal(dec[1], dec[0]);
    /* partition 0's features too: the rest of the file */
    float x[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < 60; i++)
        if (part_of(i) == 0) process(src.f, i, x);
    char err[512];
    rs_pstate_pos_t pos = {10, 2, 0, -1}, got;
    assert_int_equal(rs_pstate_save(src.ps, 0, &pos, err, sizeof(err)), RS_OK);
    /* the partition leaves src: its machines with it, p1's stay */
    uint64_t nk = 0, nk0 = 0;
    rs_pstate_drop(src.ps, 0, NULL);
    assert_false(has_machine(&src, "m0"));
    assert_false(has_machine(&src, "m2"));
    assert_false(has_machine(&src, "m4"));
    assert_true(has_machine(&src, "m1"));
    rs_alerts_stats_t st;
    rs_alerts_snapshot(src.al);
    rs_alerts_stats(src.al, &st);
    assert_int_equal(st.pol.open, 1); /* m1's */
    /* ... and arrives at dst (the file, as a local checkpoint would) */
    maint_new(&dst, d1);
    assert_int_equal(rs_pstate_load(dst.ps, 0, &got, &nk0, err, sizeof(err)),
                     RS_OK);
    assert_true(nk0 > 0);
    assert_true(has_machine(&dst, "m0"));
    assert_false(has_machine(&dst, "m1"));
    /* dst decides as ref, which never moved them: m0's episode is open
     * (no second alert), m2's debounce goes on (alert on its 2nd), m4's
     * new episode opens silently (cool-down) */
    maint_t *two[2] = {&dst, &ref};
    for (int k = 0; k < 2; k++) {
        char *o = dec[k];
        *o++ = mread(two[k], 0, 3, .9f);
        *o++ = mread(two[k], 2, 3, .9f);
        *o++ = mread(two[k], 4, 4, .9f);
        *o++ = mread(two[k], 4, 5, .9f);
        *o = '\0';
    }
    assert_string_equal(dec[1], ".A..");
    assert_string_equal(dec[0], dec[1]);
    /* a fresh instance (what a partition arrived with before): m0 and m4
     * alerted again, m2 not yet */
    {
        static maint_t fr;
        char d5[] = "/tmp/rs_test_pmaint_XXXXXX";
        assert_non_null(mkdtemp(d5));
        maint_new(&fr, d5);
        char *o = dec[0];
        *o++ = mread(&fr, 0, 3, .9f);
        *o++ = mread(&fr, 0, 4, .9f);
        *o++ = mread(&fr, 2, 3, .9f);
        *o++ = mread(&fr, 4, 4, .9f);
        *o++ = mread(&fr, 4, 5, .9f);
        *o = '\0';
        assert_string_equal(dec[0], ".A..A");
        maint_free(&fr);
        rmdir(d5);
    }

    /* damaged / newer maintenance section: refused by name, the features
     * of the same file loaded */
    char path[700];
    snprintf(path, sizeof(path), "%s/p0/checkpoint", d1);
    size_t len;
    uint8_t *img = read_all(path, &len);
    rs_pstate_file_t pf;
    assert_int_equal(rs_pstate_file_parse(img, len, &pf, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(pf.format, 2);
    assert_true(pf.maint_len > 16);
    size_t moff = (size_t)(pf.maint - img);
    uint8_t *bad = malloc(len);
    memcpy(bad, img, len);
    bad[moff + 4] = 2; /* RSMP version 2 */
    static maint_t e1;
    maint_new(&e1, d3);
    assert_int_equal(rs_alerts_part_merge(e1.al, 0, bad + moff, pf.maint_len,
                                          NULL, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "version 2"));
    rs_pstate_file_seal(bad, 0, &pf.pos, pf.feat_len, pf.caches_len,
                        pf.dedup_len, pf.maint_len);
    write_file(d3, bad, len);
    assert_int_equal(rs_pstate_load(e1.ps, 0, &got, &nk, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(nk, nk0);
    assert_false(has_machine(&e1, "m0"));
    /* a damaged policy entry (open flag 2 in the first machine's) */
    memcpy(bad, img, len);
    bad[moff + 16 + 32 + 44] = 2;
    assert_int_equal(rs_alerts_part_merge(e1.al, 0, bad + moff, pf.maint_len,
                                          NULL, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "alert policy entry"));
    /* another partition's machines */
    assert_int_equal(rs_alerts_part_merge(e1.al, 1, img + moff, pf.maint_len,
                                          NULL, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "another partition"));
    /* truncated */
    assert_int_equal(rs_alerts_part_merge(e1.al, 0, img + moff,
                                          pf.maint_len - 1, NULL, err,
                                          sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_false(has_machine(&e1, "m0"));

    /* format 1 (before the section): still loads, machines start afresh */
    {
        struct {
            char magic[8];
            uint32_t format;
            int32_t partition;
            int64_t events, labels;
            uint64_t log_end;
            int64_t changelog;
            uint64_t feat_len, caches_len, dedup_len, body_hash, hdr_hash;
        } h1;
        assert_int_equal(sizeof(h1), RS_PSTATE_FILE_HDR_V1);
        memset(&h1, 0, sizeof(h1));
        memcpy(h1.magic, "RSPSTAT1", 8);
        h1.format = 1;
        h1.partition = 0;
        h1.events = pf.pos.events;
        h1.labels = pf.pos.labels;
        h1.log_end = pf.pos.log_end;
        h1.changelog = pf.pos.changelog;
        h1.feat_len = pf.feat_len;
        h1.caches_len = pf.caches_len;
        h1.dedup_len = pf.dedup_len;
        size_t body = pf.feat_len + pf.caches_len + pf.dedup_len;
        h1.body_hash = rs_hash64(pf.feat, body);
        h1.hdr_hash = rs_hash64(&h1, offsetof(__typeof__(h1), hdr_hash));
        uint8_t *v1 = malloc(sizeof(h1) + body);
        memcpy(v1, &h1, sizeof(h1));
        memcpy(v1 + sizeof(h1), pf.feat, body);
        write_file(d4, v1, sizeof(h1) + body);
        static maint_t e2;
        maint_new(&e2, d4);
        assert_int_equal(rs_pstate_load(e2.ps, 0, &got, &nk, err,
                                        sizeof(err)), RS_OK);
        assert_int_equal(nk, nk0);
        assert_int_equal(got.events, pos.events);
        assert_false(has_machine(&e2, "m0"));
        /* changelog records 'A': one machine restored; a damaged one
         * skipped (RS_OK: the other records are used) */
        uint8_t key[RS_PSTATE_KEY_LEN], val[4096];
        size_t vl = rs_alerts_machine_write(ref.al, "m0", val, sizeof(val));
        assert_true(vl > 16 && vl <= sizeof(val));
        rs_pstate_key_encode(key, 'A', 0, rs_hash_str("m0"));
        rs_pstate_pos_t mark;
        int is_mark = 0;
        assert_int_equal(rs_pstate_apply(e2.ps, 0, key, sizeof(key), val, vl,
                                         &mark, &is_mark, err, sizeof(err)),
                         RS_OK);
        assert_true(has_machine(&e2, "m0"));
        assert_int_equal(mread(&e2, 0, 6, .9f), '.'); /* its episode */
        vl = rs_alerts_machine_write(ref.al, "m2", val, sizeof(val));
        val[4] = 9; /* version 9 */
        rs_pstate_key_encode(key, 'A', 0, rs_hash_str("m2"));
        assert_int_equal(rs_pstate_apply(e2.ps, 0, key, sizeof(key), val, vl,
                                         &mark, &is_mark, err, sizeof(err)),
                         RS_OK);
        assert_false(has_machine(&e2, "m2"));
        maint_free(&e2);
        free(v1);
    }
    free(bad);
    free(img);
    maint_free(&e1);
    maint_free(&src);
    maint_free(&ref);
    maint_free(&dst);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s %s", d1, d2, d3, d4);
    assert_int_equal(system(cmd), 0);
}

/* Idle machines (alerts.h "Idle machines"): key_ttl 24 h. */
static void test_maint_idle(void **state) {
    (void)state;
    char d1[] = "/tmp/rs_test_pmaint_XXXXXX";
    assert_non_null(mkdtemp(d1));
    static maint_t t;
    g_mttl = 24 * 3600000LL;
    maint_new(&t, d1);
    g_mttl = 0;
    rs_alerts_track_gone(t.al, 1);
    /* m0 (p0) alerted at h1, its episode open; m2 (p0) reads at h0 and a
     * failure report of it for h50 waits (p0's event time is behind) */
    assert_int_equal(mread(&t, 0, 0, .9f), '.');
    assert_int_equal(mread(&t, 0, 1, .9f), 'A');
    assert_int_equal(mread(&t, 2, 0, .1f), '.');
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    snprintf(lb.event_id, sizeof(lb.event_id), "r-2-0");
    snprintf(lb.entity_id, sizeof(lb.entity_id), "m2");
    lb.value = 1;
    lb.label_time_ms = T0 + 50 * 3600000LL;
    assert_int_equal(rs_alerts_label(t.al, 0, &lb), 1);
    rs_alerts_batch_end(t.al);
    /* m6 (p0) reads every hour to h25: m0's last reading is exactly
     * key_ttl behind p0's event time: kept */
    for (int h = 2; h <= 25; h++) assert_int_equal(mread(&t, 6, h, .1f), '.');
    assert_true(has_machine(&t, "m0"));
    rs_alerts_stats_t st;
    rs_alerts_snapshot(t.al);
    rs_alerts_stats(t.al, &st);
    assert_int_equal(st.expired, 0);
    assert_int_equal(st.pol.open, 1);
    /* to h100: m0 idle, forgotten (its open episode with it); m2 kept
     * while its report waited, the report applied at h50 at m2's last
     * reading (placed, not at the label's time), then m2 idle (50 events
     * after h50: more than a pass of the sweep over the 128 slots, 4 per
     * event) */
    for (int h = 26; h <= 100; h++) assert_int_equal(mread(&t, 6, h, .1f), '.');
    assert_false(has_machine(&t, "m0"));
    assert_false(has_machine(&t, "m2"));
    assert_true(has_machine(&t, "m6"));
    rs_alerts_snapshot(t.al);
    rs_alerts_stats(t.al, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.pol.open, 0);
    assert_int_equal(st.pol.failures, 1);
    assert_int_equal(st.unplaced, 0);
    /* remembered for the changelog's tombstones, with their partition */
    const uint64_t *keys;
    const int32_t *parts;
    uint64_t lost = 1;
    int ng = rs_alerts_gone_take(t.al, &keys, &parts, &lost);
    assert_int_equal(ng, 2);
    assert_int_equal(lost, 0);
    int seen = 0;
    for (int i = 0; i < ng; i++) {
        assert_int_equal(parts[i], 0);
        seen |= keys[i] == rs_hash_str("m0") ? 1
                : keys[i] == rs_hash_str("m2") ? 2 : 4;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(rs_alerts_gone_take(t.al, &keys, &parts, NULL), 0);
    /* m0 reads again: a new machine (alerted on its 2nd reading; with its
     * old entry the episode would still be open: no alert) */
    assert_int_equal(mread(&t, 0, 101, .9f), '.');
    assert_int_equal(mread(&t, 0, 102, .9f), 'A');
    /* an 'A' tombstone (changelog) forgets the machine of its partition
     * only */
    assert_int_equal(mread(&t, 1, 101, .1f), '.');
    assert_true(has_machine(&t, "m1"));
    uint8_t key[RS_PSTATE_KEY_LEN];
    rs_pstate_pos_t mk;
    int is_mark = 1;
    char err[256];
    rs_pstate_key_encode(key, 'A', 0, rs_hash_str("m1"));
    assert_int_equal(rs_pstate_apply(t.ps, 0, key, sizeof(key), NULL, 0, &mk,
                                     &is_mark, err, sizeof(err)), RS_OK);
    assert_int_equal(is_mark, 0);
    assert_true(has_machine(&t, "m1")); /* m1 is p1's */
    rs_pstate_key_encode(key, 'A', 1, rs_hash_str("m1"));
    assert_int_equal(rs_pstate_apply(t.ps, 1, key, sizeof(key), NULL, 0, &mk,
                                     &is_mark, err, sizeof(err)), RS_OK);
    assert_false(has_machine(&t, "m1"));
    /* not remembered: the tombstone came from the changelog */
    assert_int_equal(rs_alerts_gone_take(t.al, &keys, &parts, NULL), 0);
    maint_free(&t);
    rmdir(d1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_part_moves),
        cmocka_unit_test(test_features_part_corrupt),
        cmocka_unit_test(test_pstate_file_roundtrip),
        cmocka_unit_test(test_file_parse),
        cmocka_unit_test(test_dedup_part),
        cmocka_unit_test(test_maint_part),
        cmocka_unit_test(test_maint_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
