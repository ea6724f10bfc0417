/* fuzz_make_seeds.c -- write the seed corpora of the file-reader fuzz
 * targets from real files made by the real writers:
 *
 *   fuzz_model_file/  small "lr" and "seq" models (rs_model_save), trained
 *                     on a few labels, each in raw (0x00) and repair (0x01)
 *                     mode (fuzz_files.h);
 *   fuzz_ckpt_file/   feature checkpoints (rs_features_checkpoint_write)
 *                     of the fuzz configuration: empty, after 60 events,
 *                     after 60 events and labels, with and without a blob.
 *
 * usage: fuzz_make_seeds CORPUS_DIR   (e.g. tests/fuzz/corpus; the two
 * subdirectories must exist).  Run it again when a file format changes:
 *   cmake --build BUILD --target fuzz_make_seeds &&
 *   BUILD/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
 */
#include "fuzz_files.h"

#include <sys/stat.h>

#include "rs_test_learn.h"

static const char *out_dir;

/* Copy file `src` to out_dir/sub/name.<mode> with the mode byte first. */
static void seed_put(const char *sub, const char *name, const char *src) {
    FILE *in = fopen(src, "rb");
    FUZZ_CHECK(in != NULL);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    FUZZ_CHECK(fread(buf, 1, (size_t)n, in) == (size_t)n);
    fclose(in);
    for (unsigned mode = 0; mode < 2; mode++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s/%s.%s", out_dir, sub, name,
                 mode ? "repair" : "raw");
        FILE *out = fopen(path, "wb");
        FUZZ_CHECK(out != NULL);
        uint8_t m = (uint8_t)mode;
        FUZZ_CHECK(fwrite(&m, 1, 1, out) == 1);
        FUZZ_CHECK(fwrite(buf, 1, (size_t)n, out) == (size_t)n);
        FUZZ_CHECK(fclose(out) == 0);
        printf("%s (%ld bytes)\n", path, n + 1);
    }
    free(buf);
}

static void seed_model(const char *name, rs_model_conf_t *conf) {
    static const char *names[6] = {"amount_log", "count_1h", "mean_7d",
                                   "since_last", "distinct_cp", "fraud_rate"};
    char es[256];
    rs_test_learn_t *t = rs_test_learn_new(conf, 6, names, es, sizeof(es));
    if (!t) fprintf(stderr, "%s: %s\n", name, es);
    FUZZ_CHECK(t != NULL);
    rs_model_t *m = t->m;
    /* Score and learn a few events, one at a time, through a learning log
     * and a learner (as eval and train do). */
    for (int i = 0; i < 40; i++) {
        rs_event_t ev;
        fuzz_event(&ev, i);
        float x[6];
        for (int j = 0; j < 6; j++) x[j] = (float)((i * (j + 3)) % 11) - 2.5f;
        rs_model_input_t in;
        rs_model_output_t out;
        memset(&in, 0, sizeof(in));
        in.event_id = ev.id;
        in.entity_id = ev.entity_id;
        in.counterparty_id = ev.counterparty_id;
        in.event_time_ms = ev.event_time_ms;
        in.amount = (float)ev.amount;
        in.x = x;
        in.n_cat = 1;
        in.cat_hash[0] = rs_hash_str("mcc=5411");
        FUZZ_CHECK(rs_test_learn_forward(t, &in, 1, &out, NULL,
                                         RS_MODEL_FWD_REMEMBER) == RS_OK);
        rs_label_t lb;
        fuzz_label(&lb, i, i % 4 == 0 ? 1.0 : 0.0);
        rs_learner_res_t res;
        FUZZ_CHECK(rs_learner_label(t->l, 0, &lb, 0, -1, &res) == RS_OK);
        FUZZ_CHECK(res.outcome == RS_LEARNER_LEARNED);
    }
    const char *tmp = fuzz_scratch("seed-model");
    FUZZ_CHECK(rs_model_save(m, tmp, es, sizeof(es)) == RS_OK);
    seed_put("fuzz_model_file", name, tmp);
    unlink(tmp);
    rs_test_learn_destroy(t);
}

static void seed_ckpt(const char *name, int events, int labels, int blob) {
    rs_features_conf_t c;
    char es[256];
    fuzz_features_conf(&c);
    rs_features_t *f = rs_features_new(&c, es, sizeof(es));
    FUZZ_CHECK(f != NULL);
    float *x = malloc((size_t)rs_features_dim(f) * sizeof(float));
    for (int i = 0; i < events; i++) {
        rs_event_t ev;
        fuzz_event(&ev, i);
        FUZZ_CHECK(rs_features_process(f, &ev, x, NULL) == RS_OK);
        if (labels && i % 3 == 2) {
            rs_label_t lb;
            fuzz_label(&lb, i - 2, i % 2 ? 1.0 : 0.0);
            FUZZ_CHECK(rs_features_label(f, &lb) == RS_OK);
        }
    }
    free(x);
    /* A blob like the service's offsets record (opaque to the reader). */
    uint8_t b[40];
    for (size_t i = 0; i < sizeof(b); i++) b[i] = (uint8_t)(i * 7 + 1);
    const char *tmp = fuzz_scratch("seed-ckpt");
    FUZZ_CHECK(rs_features_checkpoint_write(f, tmp, blob ? b : NULL,
                                            blob ? sizeof(b) : 0, es,
                                            sizeof(es)) == RS_OK);
    seed_put("fuzz_ckpt_file", name, tmp);
    unlink(tmp);
    rs_features_destroy(f);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    rs_model_conf_t conf;
    fuzz_model_conf(&conf);
    conf.kind = RS_MODEL_LR;
    seed_model("lr.rsm", &conf);
    fuzz_model_conf(&conf);
    conf.kind = RS_MODEL_SEQ;
    conf.seq.d_model = 4;
    conf.seq.history = 4;
    conf.seq.layers = 1;
    conf.seq.experts = 2;
    conf.seq.top_k = 1;
    conf.seq.expert_hidden = 4;
    conf.seq.buckets = 8;
    conf.seq.warmup_updates = 0;
    seed_model("seq.rsm", &conf);
    seed_ckpt("empty.ckpt", 0, 0, 0);
    seed_ckpt("events.ckpt", 60, 0, 1);
    seed_ckpt("labels.ckpt", 60, 1, 1);
    return 0;
}
