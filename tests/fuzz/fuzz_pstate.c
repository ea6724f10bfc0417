/* fuzz_pstate.c -- libFuzzer target for the partition checkpoint (the
 * state of one input partition that leaves an instance and arrives on
 * another: scoring/pstate.h): the file parser (rs_pstate_file_parse) and,
 * on what it accepts, the three stream readers it feeds -- the feature
 * engine's partition stream (rs_features_part_read), the sequence model's
 * caches merge (rs_model_caches_merge) and the duplicate window's merge
 * (rs_dedup_merge).
 *
 * Input: a partition checkpoint file image (first byte even: 'R' of its
 * magic), or (first byte odd) a changelog record: u16 key length, key,
 * value, applied with rs_pstate_apply to fresh stores (key parser, marker
 * parser and the same stream readers).
 *
 * Oracle: every call returns RS_OK or an error with a message, never
 * crashes; a feature stream that is refused leaves the partition without
 * any entity key (never half-loaded); what is accepted is serialized
 * again, read into fresh engines and serialized once more: the same
 * bytes (the streams are stable).
 *
 * Seeds: tests/fuzz/corpus/fuzz_pstate, real files written by this file
 * built as fuzz_pstate_seeds (-DFUZZ_PSTATE_MAKE_SEEDS): an empty
 * partition and one with entity keys, index entries, caches and
 * duplicates.  Run it again when a format changes:
 *   cmake --build BUILD --target fuzz_pstate_seeds &&
 *   BUILD/tests/fuzz/fuzz_pstate_seeds tests/fuzz/corpus/fuzz_pstate
 * (seed-0 and seed-12 are format 1, kept: format 1 is still read;
 * seed-*-format2 are the same written as format 2, with an empty
 * maintenance section: the maintenance record itself is checked by
 * test_pstate test_maint_part and fuzz_coldstart for its cold-start
 * part.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/learnlog.h"
#include "scoring/pstate.h"

#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)
#define FUZZ_DIM 3
#define FUZZ_PART 1

static const char *const fuzz_names[FUZZ_DIM] = {"a", "b", "c"};

static rs_features_t *fuzz_feat(void) {
    rs_features_conf_t c;
    char err[256];
    rs_features_conf_init(&c);
    c.max_keys = 32;
    c.max_counterparties = 32;
    c.history = 8;
    c.label_index = 64;
    c.label_maturity = 86400000LL;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    FUZZ_CHECK(f != NULL);
    return f;
}

static rs_model_t *fuzz_model(void) {
    rs_model_conf_t c;
    char es[256];
    rs_model_conf_init(&c);
    c.batch_max = 4;
    c.seq.d_model = 4;
    c.seq.history = 4;
    c.seq.layers = 1;
    c.seq.experts = 2;
    c.seq.top_k = 1;
    c.seq.expert_hidden = 4;
    c.seq.buckets = 8;
    c.seq.max_entities = 16;
    rs_model_t *m = rs_model_new(&c, FUZZ_DIM, fuzz_names, es, sizeof(es));
    FUZZ_CHECK(m != NULL);
    return m;
}

static rs_dedup_t *fuzz_dedup(void) {
    char err[256];
    rs_dedup_t *d = rs_dedup_new(32, 86400000LL, err, sizeof(err));
    FUZZ_CHECK(d != NULL);
    return d;
}


#ifndef FUZZ_PSTATE_MAKE_SEEDS
static int fuzz_sel(void *o, uint64_t key, int32_t p) {
    (void)key;
    return p == *(const int32_t *)o;
}

/* The three streams of partition FUZZ_PART, concatenated (malloc'd). */
static uint8_t *fuzz_streams(rs_features_t *f, rs_model_t *m, rs_dedup_t *d,
                             size_t *len) {
    int32_t p = FUZZ_PART;
    size_t fl = 0, cl, dl, got;
    rs_features_part_write(f, p, NULL, 0, &fl, NULL);
    cl = rs_model_caches_size_sel(m, fuzz_sel, &p);
    dl = rs_dedup_size_part(d, p);
    uint8_t *b = malloc(fl + cl + dl + 1);
    FUZZ_CHECK(rs_features_part_write(f, p, b, fl, &got, NULL) == RS_OK);
    FUZZ_CHECK(rs_model_caches_write_sel(m, fuzz_sel, &p, b + fl, cl, &got) ==
               RS_OK);
    FUZZ_CHECK(rs_dedup_write_part(d, p, b + fl + cl, dl, &got) == RS_OK);
    *len = fl + cl + dl;
    return b;
}

/* Load the sections of pf into f, m, d; 0 if all were accepted. */
static int fuzz_load(const rs_pstate_file_t *pf, rs_features_t *f,
                     rs_model_t *m, rs_dedup_t *d) {
    char err[512];
    uint64_t n = 0;
    int bad = 0;
    err[0] = '\0';
    rs_err_t e = rs_features_part_read(f, FUZZ_PART, pf->feat, pf->feat_len,
                                       &n, err, sizeof(err));
    if (e != RS_OK) {
        rs_features_stats_t st;
        FUZZ_CHECK(err[0]);
        rs_features_stats(f, &st);
        FUZZ_CHECK(st.entity_keys == 0); /* never half-loaded */
        bad = 1;
    }
    err[0] = '\0';
    e = rs_model_caches_merge(m, pf->caches, pf->caches_len, &n, err,
                              sizeof(err));
    if (e != RS_OK) {
        FUZZ_CHECK(err[0]);
        rs_model_stats_t ms;
        rs_model_stats(m, &ms);
        FUZZ_CHECK(ms.entities == 0); /* unchanged */
        bad = 1;
    }
    err[0] = '\0';
    if (pf->dedup_len) {
        e = rs_dedup_merge(d, pf->dedup, pf->dedup_len, &n, err, sizeof(err));
        if (e != RS_OK) {
            FUZZ_CHECK(err[0]);
            bad = 1;
        }
    }
    return bad;
}

/* A changelog record on fresh stores. */
static int fuzz_record(const uint8_t *data, size_t size) {
    char err[512];
    if (size < 3) return 0;
    size_t kl = (size_t)data[1] | (size_t)data[2] << 8;
    if (kl > size - 3) return 0;
    const uint8_t *key = data + 3, *val = key + kl;
    size_t vl = size - 3 - kl;
    rs_features_t *f = fuzz_feat();
    rs_model_t *m = fuzz_model();
    rs_dedup_t *d = fuzz_dedup();
    rs_pstate_t *ps = rs_pstate_new("/tmp", f, m, d, err, sizeof(err));
    FUZZ_CHECK(ps != NULL);
    rs_pstate_pos_t pos;
    int is_mark = 0;
    err[0] = '\0';
    rs_err_t e = rs_pstate_apply(ps, FUZZ_PART, key, kl, val, vl, &pos,
                                 &is_mark, err, sizeof(err));
    FUZZ_CHECK(e == RS_OK || (e == RS_ERR_CORRUPT && err[0]));
    if (e == RS_OK && is_mark) {
        uint8_t mk[RS_PSTATE_MARK_LEN];
        rs_pstate_mark_encode(mk, &pos);
        FUZZ_CHECK(vl == sizeof(mk) && !memcmp(mk, val, vl));
    }
    rs_pstate_destroy(ps);
    rs_features_destroy(f);
    rs_model_destroy(m);
    rs_dedup_destroy(d);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rs_pstate_file_t pf;
    char err[512];
    if (size && (data[0] & 1)) return fuzz_record(data, size);
    if (rs_pstate_file_parse(data, size, &pf, err, sizeof(err)) != RS_OK) {
        FUZZ_CHECK(err[0]);
        return 0;
    }
    rs_features_t *f = fuzz_feat();
    rs_model_t *m = fuzz_model();
    rs_dedup_t *d = fuzz_dedup();
    if (!fuzz_load(&pf, f, m, d)) {
        /* stable: serialize, load into fresh engines, serialize again */
        size_t l1, l2;
        uint8_t *b1 = fuzz_streams(f, m, d, &l1);
        size_t fl = 0, cl;
        int32_t p = FUZZ_PART;
        rs_features_part_write(f, p, NULL, 0, &fl, NULL);
        cl = rs_model_caches_size_sel(m, fuzz_sel, &p);
        rs_pstate_file_t pf2 = {.partition = FUZZ_PART, .format = 2,
                                .pos = pf.pos, .feat = b1,
                                .caches = b1 + fl, .dedup = b1 + fl + cl,
                                .feat_len = fl, .caches_len = cl,
                                .dedup_len = l1 - fl - cl};
        rs_features_t *f2 = fuzz_feat();
        rs_model_t *m2 = fuzz_model();
        rs_dedup_t *d2 = fuzz_dedup();
        FUZZ_CHECK(fuzz_load(&pf2, f2, m2, d2) == 0);
        uint8_t *b2 = fuzz_streams(f2, m2, d2, &l2);
        FUZZ_CHECK(l1 == l2 && !memcmp(b1, b2, l1));
        free(b1);
        free(b2);
        rs_features_destroy(f2);
        rs_model_destroy(m2);
        rs_dedup_destroy(d2);
    }
    rs_features_destroy(f);
    rs_model_destroy(m);
    rs_dedup_destroy(d);
    return 0;
}
#else
/* Seeds: real partition checkpoints. */
static void fuzz_fill(rs_features_t *f, rs_model_t *m, rs_dedup_t *d, int n) {
    uint8_t rec[4096];
    FUZZ_CHECK(rs_model_lrec_size(m) <= sizeof(rec));
    for (int i = 0; i < n; i++) {
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "tx-%d", i);
        snprintf(ev.type, sizeof(ev.type), "card_tx");
        snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", i % 5);
        snprintf(ev.counterparty_id, sizeof(ev.counterparty_id), "m-%d", i % 3);
        ev.event_time_ms = 1767225600000LL + (int64_t)i * 600000;
        ev.amount = 1.5 + i;
        float x[RS_FEATURES_MAX_DIM];
        rs_features_set_partition(f, FUZZ_PART);
        FUZZ_CHECK(rs_features_process(f, &ev, x, NULL) == RS_OK);
        if (i % 4 == 3) {
            rs_label_t lb;
            memset(&lb, 0, sizeof(lb));
            snprintf(lb.event_id, sizeof(lb.event_id), "tx-%d", i - 2);
            lb.value = 1;
            lb.label_time_ms = ev.event_time_ms;
            rs_features_label(f, &lb);
        }
        float mx[FUZZ_DIM] = {(float)i, 1, 2};
        rs_model_input_t in;
        rs_model_output_t out;
        memset(&in, 0, sizeof(in));
        in.event_id = ev.id;
        in.entity_id = ev.entity_id;
        in.counterparty_id = ev.counterparty_id;
        in.event_time_ms = ev.event_time_ms;
        in.x = mx;
        in.lrec = rec;
        in.lpos = RS_LPOS(FUZZ_PART, i);
        FUZZ_CHECK(rs_model_forward(m, &in, 1, &out, NULL,
                                    RS_MODEL_FWD_REMEMBER) == RS_OK);
        uint64_t h;
        rs_dedup_check_part(d, rs_dedup_key(ev.entity_id, ev.id),
                            ev.event_time_ms, FUZZ_PART, &h);
        rs_dedup_rec_t r;
        memset(&r, 0, sizeof(r));
        r.has = i % 3 != 0;
        r.score = 0.25f;
        snprintf(r.model_version, sizeof(r.model_version), "seq-f-%d", i % 2);
        if (r.has) rs_dedup_set(d, h, &r);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/fuzz_pstate_XXXXXX", err[256];
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    const int sizes[] = {0, 12};
    for (int k = 0; k < 2; k++) {
        rs_features_t *f = fuzz_feat();
        rs_model_t *m = fuzz_model();
        rs_dedup_t *d = fuzz_dedup();
        fuzz_fill(f, m, d, sizes[k]);
        rs_pstate_t *ps = rs_pstate_new(dir, f, m, d, err, sizeof(err));
        FUZZ_CHECK(ps != NULL);
        rs_pstate_pos_t pos = {sizes[k], sizes[k] / 4, (uint64_t)sizes[k], -1};
        FUZZ_CHECK(rs_pstate_save(ps, FUZZ_PART, &pos, err, sizeof(err)) ==
                   RS_OK);
        char src[400], dst[400], cmd[900];
        snprintf(src, sizeof(src), "%s/p%d/checkpoint", dir, FUZZ_PART);
        snprintf(dst, sizeof(dst), "%s/seed-%d", argv[1], sizes[k]);
        snprintf(cmd, sizeof(cmd), "cp %s %s", src, dst);
        FUZZ_CHECK(system(cmd) == 0);
        rs_pstate_destroy(ps);
        rs_features_destroy(f);
        rs_model_destroy(m);
        rs_dedup_destroy(d);
    }
    /* changelog records of a filled partition: one per store */
    rs_features_t *f = fuzz_feat();
    rs_model_t *m = fuzz_model();
    rs_dedup_t *d = fuzz_dedup();
    fuzz_fill(f, m, d, 12);
    uint8_t val[65536], rec[65600];
    size_t vl = 0;
    const struct { char store; int kind; } recs[] = {
        {'F', 0}, {'S', 1}, {'I', 2}, {'D', 3}, {'M', 4}, {'I', 5}};
    for (size_t k = 0; k < sizeof(recs) / sizeof(recs[0]); k++) {
        uint64_t id = 0;
        switch (recs[k].kind) {
        case 0:
            FUZZ_CHECK(rs_features_entity_write(f, "card-2", val, sizeof(val),
                                                &vl) == RS_OK);
            id = rs_hash_str("card-2");
            break;
        case 1:
            FUZZ_CHECK(rs_model_caches_write_entity(m, "card-2", val,
                                                    sizeof(val), &vl) == RS_OK);
            id = rs_hash_str("card-2");
            break;
        case 2:
            FUZZ_CHECK(rs_features_event_write(f, "tx-7", val, sizeof(val),
                                               &vl) == RS_OK);
            id = rs_hash_str("tx-7");
            break;
        case 3:
            id = rs_dedup_key("card-2", "tx-7");
            FUZZ_CHECK(rs_dedup_write_key(d, id, val, sizeof(val), &vl) ==
                       RS_OK);
            break;
        case 4: {
            rs_pstate_pos_t pos = {12, 3, 12, -1};
            rs_pstate_mark_encode(val, &pos);
            vl = RS_PSTATE_MARK_LEN;
            break;
        }
        default: /* a tombstone */
            vl = 0;
            id = rs_hash_str("tx-1");
            break;
        }
        rec[0] = 1;
        rec[1] = RS_PSTATE_KEY_LEN;
        rec[2] = 0;
        rs_pstate_key_encode(rec + 3, recs[k].store, FUZZ_PART, id);
        memcpy(rec + 3 + RS_PSTATE_KEY_LEN, val, vl);
        char path[400];
        snprintf(path, sizeof(path), "%s/record-%c%zu", argv[1],
                 recs[k].store, k);
        FILE *fp = fopen(path, "wb");
        FUZZ_CHECK(fp != NULL);
        FUZZ_CHECK(fwrite(rec, 1, 3 + RS_PSTATE_KEY_LEN + vl, fp) ==
                   3 + RS_PSTATE_KEY_LEN + vl);
        fclose(fp);
    }
    rs_features_destroy(f);
    rs_model_destroy(m);
    rs_dedup_destroy(d);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
#endif
