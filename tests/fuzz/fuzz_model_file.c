/* fuzz_model_file.c -- libFuzzer target for the model file reader
 * (rs_model_load), the path `serve --model FILE` and the model store take.
 *
 * Input: one mode byte, then the file (fuzz_files.h): mode bit 0 repairs
 * the envelope (payload length and trailing checksum recomputed) so the
 * mutations reach the payload parser (kind, dimension, feature names,
 * settings, architecture, parameters).  The file goes to a memfd and is
 * loaded through /proc/self/fd/N with the service's kind of conf
 * (defaults, small buffers; the architecture of a "seq" file is the
 * file's).
 *
 * Oracle: the load returns RS_OK or RS_ERR_CORRUPT / RS_ERR_CONFIG with a
 * message naming the file; nothing crashes, leaks or allocates without
 * bound.  A model that loads must score a small batch (two events of one
 * entity, one of another) with finite scores in [0,1] and sealed learning
 * records, save, load back and score the same batch bit for bit, with the
 * same records byte for byte.
 *
 * Seeds: tests/fuzz/corpus/fuzz_model_file, made by fuzz_make_seeds
 * (small "lr" and "seq" models, trained a little through a learning log,
 * raw and repair mode); lr-v0 / seq-v0 were made before the learning log
 * (non-zero values in the slots of the former pending_max keys: files of
 * then still load).
 * FUZZ_VERBOSE=1 prints what the reader said for each input, and
 * FUZZ_SAVE=FILE writes the file the reader got (after the repair), to
 * reproduce a finding with the real binary (triage; it is written on
 * every call, so run it on one input: `TARGET FILE`).
 */
#include "fuzz_files.h"

#include <math.h>

#include "model/learnlog.h"

#define FUZZ_N 3

/* Score the fixed batch with m: scores[FUZZ_N], its learning records
 * into recs[FUZZ_N][rs_model_lrec_size(m)] (positions 0..FUZZ_N-1 of
 * partition 0). */
static void fuzz_score(rs_model_t *m, float *x /* [FUZZ_N][dim] */,
                       float *contrib /* [FUZZ_N][dim] */, float *scores,
                       uint8_t *recs) {
    const size_t rsz = rs_model_lrec_size(m);
    static const char *ids[FUZZ_N] = {"e-1", "e-2", "e-3"};
    static const char *ents[FUZZ_N] = {"card-1", "card-1", "card-2"};
    int dim = rs_model_dim(m);
    rs_model_input_t in[FUZZ_N];
    rs_model_output_t out[FUZZ_N];
    memset(in, 0, sizeof(in));
    for (int i = 0; i < FUZZ_N; i++) {
        in[i].event_id = ids[i];
        in[i].entity_id = ents[i];
        in[i].counterparty_id = i == 2 ? "" : "m-7";
        in[i].event_time_ms = 1767225600000LL + i * 60000;
        in[i].amount = 12.5f * (float)(i + 1);
        in[i].x = x + (size_t)i * (size_t)dim;
        in[i].n_cat = 2;
        in[i].cat_hash[0] = rs_hash_str("mcc=5411");
        in[i].cat_hash[1] = rs_hash_str("country=FR");
        in[i].lrec = recs + (size_t)i * rsz;
        in[i].lpos = RS_LPOS(0, i);
    }
    rs_err_t err = rs_model_forward(m, in, FUZZ_N, out, contrib,
                                    RS_MODEL_FWD_REMEMBER |
                                        RS_MODEL_FWD_EXPLAIN);
    FUZZ_CHECK(err == RS_OK);
    for (int i = 0; i < FUZZ_N; i++) {
        FUZZ_CHECK(isfinite(out[i].score));
        FUZZ_CHECK(out[i].score >= 0.0f && out[i].score <= 1.0f);
        scores[i] = out[i].score;
        rs_lrec_hdr_t h;
        memcpy(&h, recs + (size_t)i * rsz, sizeof(h));
        FUZZ_CHECK(h.sum == rs_lrec_sum(recs + (size_t)i * rsz, rsz));
        FUZZ_CHECK(h.state == 0);
        FUZZ_CHECK(!memcmp(&h.score, &out[i].score, sizeof(float)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0];
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    if (len) memcpy(file, data + 1, len);
    /* magic 8 | format u32 | payload length u64 | payload | u32 checksum */
    if ((mode & FUZZ_MODE_REPAIR) && len >= 24) {
        fuzz_put64(file + 12, (uint64_t)(len - 24));
        fuzz_put32(file + len - 4, rs_checksum32(file, len - 4, 0));
    }
    char path[64], errstr[512];
    fuzz_save(file, len);
    int fd = fuzz_memfd(file, len, path, sizeof(path));
    free(file);

    rs_model_conf_t conf;
    fuzz_model_conf(&conf);
    rs_model_t *m = NULL;
    errstr[0] = '\0';
    rs_err_t err = rs_model_load(path, &conf, &m, errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE")) /* triage: what the reader said */
        fprintf(stderr, "%zu bytes, mode %u: %s\n", len, mode,
                err == RS_OK ? "loaded" : errstr);
    close(fd);
    if (err != RS_OK) {
        FUZZ_CHECK(m == NULL);
        FUZZ_CHECK(err == RS_ERR_CORRUPT || err == RS_ERR_CONFIG);
        FUZZ_CHECK(strstr(errstr, path) != NULL);
        return 0;
    }
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(rs_model_version(m) != NULL);
    int dim = rs_model_dim(m);
    FUZZ_CHECK(dim >= 1);

    /* Save, load back: the reloaded model scores bit for bit alike. */
    const char *copy = fuzz_scratch("model");
    FUZZ_CHECK(rs_model_save(m, copy, errstr, sizeof(errstr)) == RS_OK);
    rs_model_t *m2 = NULL;
    err = rs_model_load(copy, &conf, &m2, errstr, sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "reload of a saved model: %s\n", errstr);
    FUZZ_CHECK(err == RS_OK);
    unlink(copy);
    FUZZ_CHECK(rs_model_dim(m2) == dim);
    FUZZ_CHECK(!strcmp(rs_model_version(m), rs_model_version(m2)));

    float *x = malloc((size_t)FUZZ_N * (size_t)dim * sizeof(float));
    float *contrib = malloc((size_t)FUZZ_N * (size_t)dim * sizeof(float));
    for (size_t i = 0; i < (size_t)FUZZ_N * (size_t)dim; i++)
        x[i] = (float)((int)(i % 7) - 3) * 0.75f + (float)(i % 3) * 10.0f;
    float s1[FUZZ_N], s2[FUZZ_N];
    const size_t rsz = rs_model_lrec_size(m);
    FUZZ_CHECK(rs_model_lrec_size(m2) == rsz);
    uint8_t *r1 = malloc(FUZZ_N * rsz), *r2 = malloc(FUZZ_N * rsz);
    fuzz_score(m, x, contrib, s1, r1);
    fuzz_score(m2, x, contrib, s2, r2);
    FUZZ_CHECK(memcmp(s1, s2, sizeof(s1)) == 0);
    FUZZ_CHECK(memcmp(r1, r2, FUZZ_N * rsz) == 0);
    free(r1);
    free(r2);
    free(x);
    free(contrib);
    rs_model_destroy(m);
    rs_model_destroy(m2);
    return 0;
}
