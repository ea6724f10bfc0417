/* fuzz_model_caches.c -- libFuzzer target for the entity-cache reader
 * (rs_model_caches_read), the path the service takes at start to restore
 * the "seq" caches from its final checkpoint.
 *
 * Input: one mode byte, then the cache buffer.  Mode bit 0 ("repair",
 * fuzz_files.h) recomputes the trailing checksum (u64 xxHash3 of all
 * before it) so mutations reach the parser behind it (architecture,
 * counts, lengths, values); bit 1 reads into an "lr" model instead (no
 * caches: only 0 bytes are RS_OK).  The reader gets a "seq" model of a
 * fixed small architecture (FUZZ_CACHES_* below; the seeds are of it)
 * that already holds caches of its own, so "unchanged on error" means
 * something.
 *
 * Oracle: the read returns RS_OK, RS_ERR_CORRUPT or RS_ERR_INVALID (with
 * a message); on an error the model's caches are byte for byte what they
 * were.  After RS_OK: at most seq.max_entities entities; the caches write
 * and read back into a fresh model, which writes the same bytes and
 * scores a fixed batch (explanations on) with the same bits.  Values are
 * only checked finite, so a crafted buffer may make scores NaN: the
 * oracle compares bits, not ranges.
 *
 * Seeds: tests/fuzz/corpus/fuzz_model_caches, real caches written by this
 * file built as fuzz_caches_seeds (-DFUZZ_CACHES_MAKE_SEEDS): empty, a
 * few entities, and a pool larger than the reader's (the read keeps the
 * most recent), each raw and repair.  Run it again when the format or
 * the architecture below changes:
 *   cmake --build BUILD --target fuzz_caches_seeds &&
 *   BUILD/tests/fuzz/fuzz_caches_seeds tests/fuzz/corpus/fuzz_model_caches
 * FUZZ_VERBOSE=1 prints what the reader said for each input.
 */
#include "fuzz_files.h"

#include "model/learnlog.h"

#define FUZZ_CACHES_DIM 3
#define FUZZ_CACHES_POOL 8 /* the reader's seq.max_entities */
#define FUZZ_CACHES_TRAILER 8
#define FUZZ_N 4

static const char *const fuzz_names[FUZZ_CACHES_DIM] = {"amount_log",
                                                        "count_1h", "since"};

/* The fixed architecture: 2 layers (per-layer layout), rings of 4. */
static void fuzz_caches_conf(rs_model_conf_t *c, int kind, int pool) {
    rs_model_conf_init(c);
    c->kind = kind;
    c->batch_max = 4;
    c->seq.d_model = 4;
    c->seq.history = 4;
    c->seq.layers = 2;
    c->seq.experts = 2;
    c->seq.top_k = 1;
    c->seq.expert_hidden = 4;
    c->seq.buckets = 8;
    c->seq.max_entities = pool;
}

static rs_model_t *fuzz_caches_model(int kind, int pool) {
    rs_model_conf_t c;
    char es[256];
    fuzz_caches_conf(&c, kind, pool);
    rs_model_t *m = rs_model_new(&c, FUZZ_CACHES_DIM, fuzz_names, es,
                                 sizeof(es));
    if (!m) fprintf(stderr, "rs_model_new: %s\n", es);
    FUZZ_CHECK(m != NULL);
    return m;
}

/* Score events first..first+n-1 (card-(i % n_ent), a minute apart) with
 * `flags`, in batches of FUZZ_N; scores[n] (may be NULL) gets the
 * scores, bits[n] the attention weight of the most attended event.  With
 * RS_MODEL_FWD_REMEMBER event i's learning record is written to a scratch
 * buffer at log position i (partition 0), so the caches hold positions
 * (the records themselves are not kept: the reader never sees them). */
static void fuzz_stream(rs_model_t *m, int first, int n, int n_ent,
                        unsigned flags, float *scores, float *bits) {
    const size_t rsz = rs_model_lrec_size(m);
    uint8_t *recs = malloc(FUZZ_N * rsz);
    for (int i0 = 0; i0 < n; i0 += FUZZ_N) {
        int k = n - i0 < FUZZ_N ? n - i0 : FUZZ_N;
        rs_model_input_t in[FUZZ_N];
        rs_model_output_t out[FUZZ_N];
        char ids[FUZZ_N][24], ents[FUZZ_N][24];
        float x[FUZZ_N][FUZZ_CACHES_DIM];
        memset(in, 0, sizeof(in));
        for (int r = 0; r < k; r++) {
            int i = first + i0 + r;
            snprintf(ids[r], sizeof(ids[r]), "tx-%d", i);
            snprintf(ents[r], sizeof(ents[r]), "card-%d", i % n_ent);
            for (int j = 0; j < FUZZ_CACHES_DIM; j++)
                x[r][j] = (float)((i * (j + 3)) % 11) - 2.5f;
            in[r].event_id = ids[r];
            in[r].entity_id = ents[r];
            in[r].counterparty_id = i % 3 ? "m-7" : "";
            in[r].event_time_ms = 1767225600000LL + (int64_t)i * 60000;
            in[r].amount = 12.5f * (float)(i % 9);
            in[r].x = x[r];
            in[r].n_cat = 1;
            in[r].cat_hash[0] = rs_hash_str(i % 2 ? "mcc=5411" : "mcc=5812");
            in[r].lrec = recs + (size_t)r * rsz;
            in[r].lpos = RS_LPOS(0, i);
        }
        FUZZ_CHECK(rs_model_forward(m, in, k, out, NULL, flags) == RS_OK);
        for (int r = 0; r < k; r++) {
            if (scores) scores[i0 + r] = out[r].score;
            if (bits)
                bits[i0 + r] = out[r].n_attended ? out[r].attended[0].weight
                                                 : out[r].self_weight;
        }
    }
    free(recs);
}

/* m's caches in a new buffer (*len bytes). */
static uint8_t *fuzz_caches(const rs_model_t *m, size_t *len) {
    size_t need = rs_model_caches_size(m);
    uint8_t *b = malloc(need ? need : 1);
    FUZZ_CHECK(rs_model_caches_write(m, b, need, len) == RS_OK);
    FUZZ_CHECK(*len == need);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (len) memcpy(buf, data + 1, len);
    if ((mode & FUZZ_MODE_REPAIR) && len >= FUZZ_CACHES_TRAILER)
        fuzz_put64(buf + len - FUZZ_CACHES_TRAILER,
                   rs_hash64(buf, len - FUZZ_CACHES_TRAILER));
    fuzz_save(buf, len);

    const int lr = (mode & 0x2u) != 0;
    rs_model_t *m = fuzz_caches_model(lr ? RS_MODEL_LR : RS_MODEL_SEQ,
                                      FUZZ_CACHES_POOL);
    fuzz_stream(m, 1000, 12, 5, 0, NULL, NULL); /* caches of its own */
    size_t l0;
    uint8_t *before = fuzz_caches(m, &l0);
    char errstr[512] = "";
    rs_err_t err = rs_model_caches_read(m, len ? buf : NULL, len, errstr,
                                        sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%zu bytes, mode %u: %s\n", len, mode,
                err == RS_OK ? "read" : errstr);
    free(buf);
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT || err == RS_ERR_INVALID);
        FUZZ_CHECK(errstr[0] != '\0');
        size_t l1;
        uint8_t *after = fuzz_caches(m, &l1);
        FUZZ_CHECK(l1 == l0 && memcmp(before, after, l0) == 0);
        free(after);
        free(before);
        rs_model_destroy(m);
        return 0;
    }
    free(before);
    FUZZ_CHECK(!lr || len == 0);
    rs_model_stats_t st;
    rs_model_stats(m, &st);
    FUZZ_CHECK(st.entities <= FUZZ_CACHES_POOL);

    /* write, read into a fresh model: the same bytes, the same bits */
    size_t l1, l2;
    uint8_t *w1 = fuzz_caches(m, &l1);
    rs_model_t *m2 = fuzz_caches_model(lr ? RS_MODEL_LR : RS_MODEL_SEQ,
                                       FUZZ_CACHES_POOL);
    err = rs_model_caches_read(m2, w1, l1, errstr, sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "read of written caches: %s\n", errstr);
    FUZZ_CHECK(err == RS_OK);
    uint8_t *w2 = fuzz_caches(m2, &l2);
    FUZZ_CHECK(l1 == l2 && memcmp(w1, w2, l1) == 0);
    free(w1);
    free(w2);
    float s1[2 * FUZZ_N], s2[2 * FUZZ_N], a1[2 * FUZZ_N], a2[2 * FUZZ_N];
    fuzz_stream(m, 0, 2 * FUZZ_N, 6, RS_MODEL_FWD_EXPLAIN, s1, a1);
    fuzz_stream(m2, 0, 2 * FUZZ_N, 6, RS_MODEL_FWD_EXPLAIN, s2, a2);
    FUZZ_CHECK(memcmp(s1, s2, sizeof(s1)) == 0);
    FUZZ_CHECK(memcmp(a1, a2, sizeof(a1)) == 0);
    rs_model_destroy(m);
    rs_model_destroy(m2);
    return 0;
}

#ifdef FUZZ_CACHES_MAKE_SEEDS
/* fuzz_caches_seeds DIR: the seed corpus from real written caches. */
static void seed_put(const char *dir, const char *name, const uint8_t *b,
                     size_t n) {
    for (unsigned mode = 0; mode < 2; mode++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s.%s", dir, name,
                 mode ? "repair" : "raw");
        FILE *out = fopen(path, "wb");
        FUZZ_CHECK(out != NULL);
        uint8_t mb = (uint8_t)mode;
        FUZZ_CHECK(fwrite(&mb, 1, 1, out) == 1);
        FUZZ_CHECK(fwrite(b, 1, n, out) == n);
        FUZZ_CHECK(fclose(out) == 0);
        printf("%s (%zu bytes)\n", path, n + 1);
        /* and it passes the oracle */
        uint8_t *in = malloc(n + 1);
        in[0] = mb;
        memcpy(in + 1, b, n);
        LLVMFuzzerTestOneInput(in, n + 1);
        free(in);
    }
}

static void seed_model(const char *dir, const char *name, int pool, int n,
                       int n_ent) {
    rs_model_t *m = fuzz_caches_model(RS_MODEL_SEQ, pool);
    if (n) fuzz_stream(m, 0, n, n_ent, RS_MODEL_FWD_REMEMBER, NULL, NULL);
    size_t len;
    uint8_t *b = fuzz_caches(m, &len);
    seed_put(dir, name, b, len);
    free(b);
    rs_model_destroy(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_caches_seeds CORPUS_DIR\n");
        return 2;
    }
    seed_model(argv[1], "empty.rsec", FUZZ_CACHES_POOL, 0, 1);
    /* 3 entities, rings not full */
    seed_model(argv[1], "few.rsec", FUZZ_CACHES_POOL, 8, 3);
    /* 12 entities with wrapped rings: more than the reader's pool */
    seed_model(argv[1], "pool12.rsec", 12, 60, 12);
    return 0;
}
#endif
