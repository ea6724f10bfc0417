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
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/learnlog.h"
#include "scoring/pstate.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_part_moves),
        cmocka_unit_test(test_features_part_corrupt),
        cmocka_unit_test(test_pstate_file_roundtrip),
        cmocka_unit_test(test_file_parse),
        cmocka_unit_test(test_dedup_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
