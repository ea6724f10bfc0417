/* fuzz_model_sync.c -- libFuzzer target for the decoder of a version
 * message on the model topic (rs_combine_msg_decode, model/combine.h):
 * what every instance reads from the other instances when sync.enabled.
 *
 * Input: one mode byte, then the message.  Mode bit 0 ("repair")
 * recomputes the trailing checksum (u64 xxHash3 of all before it) so
 * mutations reach the parser behind it (names, counts, weights, the model
 * length); bit 1 also loads the model bytes (rs_model_load_mem) and, when
 * they load, plans a combination of the message with a fixed local input
 * (rs_combine_plan), as the sync thread and the trainer would.
 *
 * Oracle: decode returns RS_OK or RS_ERR_CORRUPT (with a message); after
 * RS_OK every name is valid, no origin twice, labels <= updates, weights
 * in [0, 1], the model inside the input, and encode(decoded) -> decode
 * gives the same fields and re-encodes to the same bytes.  The load
 * returns a model or an error, never crashes; a plan returns RS_OK or an
 * error with a message.
 *
 * Seeds: tests/fuzz/corpus/fuzz_model_sync, real messages written by this
 * file built as fuzz_sync_seeds (-DFUZZ_SYNC_MAKE_SEEDS): a local version,
 * a combined one with inputs, a lineage file (no model), each raw and
 * repair, with a small real "lr" model inside.  Run it again when the
 * format changes:
 *   cmake --build BUILD --target fuzz_sync_seeds &&
 *   BUILD/tests/fuzz/fuzz_sync_seeds tests/fuzz/corpus/fuzz_model_sync
 * FUZZ_VERBOSE=1 prints what the decoder said for each input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/combine.h"

#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

#ifndef FUZZ_SYNC_MAKE_SEEDS
static int fuzz_msg_equal(const rs_combine_msg_t *a,
                          const rs_combine_msg_t *b) {
    if (strcmp(a->instance, b->instance) || strcmp(a->version, b->version) ||
        a->flags != b->flags || a->produced_ms != b->produced_ms ||
        !rs_know_equal(&a->know, &b->know) || a->ninputs != b->ninputs ||
        a->model_len != b->model_len ||
        (a->model_len && memcmp(a->model, b->model, a->model_len)))
        return 0;
    for (int i = 0; i < a->ninputs; i++)
        if (strcmp(a->inputs[i].version, b->inputs[i].version) ||
            memcmp(&a->inputs[i].weight, &b->inputs[i].weight, 8))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int mode = data[0];
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (n) memcpy(buf, data + 1, n);
    if ((mode & 1) && n >= 8) {
        uint64_t h = rs_hash64(buf, n - 8);
        for (int i = 0; i < 8; i++) buf[n - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    char errstr[256] = "";
    rs_combine_msg_t *m = malloc(sizeof(*m)), *m2 = malloc(sizeof(*m2));
    rs_err_t err = rs_combine_msg_decode(buf, n, m, errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_model_sync: %zu bytes: %s\n", n,
                err == RS_OK ? "ok" : errstr);
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT && errstr[0]);
        goto done;
    }
    FUZZ_CHECK(rs_combine_id_valid(m->instance));
    FUZZ_CHECK(rs_model_version_parse(m->version, NULL, NULL));
    FUZZ_CHECK(m->know.n >= 0 && m->know.n <= RS_COMBINE_ORIGINS);
    for (int i = 0; i < m->know.n; i++) {
        FUZZ_CHECK(m->know.o[i].labels <= m->know.o[i].updates);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(m->know.o[i].origin, m->know.o[j].origin));
    }
    for (int i = 0; i < m->ninputs; i++)
        FUZZ_CHECK(m->inputs[i].weight >= 0 && m->inputs[i].weight <= 1);
    FUZZ_CHECK(!m->model_len ||
               (m->model >= buf && m->model + m->model_len <= buf + n));
    /* round trip */
    uint8_t *enc = NULL;
    size_t elen = 0;
    FUZZ_CHECK(rs_combine_msg_encode(m, &enc, &elen, errstr,
                                     sizeof(errstr)) == RS_OK);
    FUZZ_CHECK(rs_combine_msg_decode(enc, elen, m2, errstr,
                                     sizeof(errstr)) == RS_OK);
    FUZZ_CHECK(fuzz_msg_equal(m, m2));
    uint8_t *enc2 = NULL;
    size_t elen2 = 0;
    FUZZ_CHECK(rs_combine_msg_encode(m2, &enc2, &elen2, errstr,
                                     sizeof(errstr)) == RS_OK);
    FUZZ_CHECK(elen2 == elen && !memcmp(enc, enc2, elen));
    rs_free(enc);
    rs_free(enc2);
    if ((mode & 2) && m->model_len) {
        /* the trainer's settings, as the sync loads with (small buffers:
         * a crafted file cannot size them) */
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        c.batch_max = 4;
        c.seq.max_entities = 5;
        rs_model_t *mod = NULL;
        rs_err_t le = rs_model_load_mem(m->model, m->model_len, "fuzz", &c,
                                        &mod, errstr, sizeof(errstr));
        FUZZ_CHECK(le == RS_OK ? mod != NULL : (mod == NULL && errstr[0]));
        rs_model_destroy(mod);
        rs_know_t local;
        rs_know_clear(&local);
        rs_know_add(&local, "zzzz", 5, 5, 5);
        rs_combine_input_t in[2] = {{m->instance, m->version, &m->know},
                                    {"zzzz", "lr-00000000-1.zzzz", &local}};
        rs_combine_plan_t *p = malloc(sizeof(*p));
        int two = strcmp(m->instance, "zzzz") < 0;
        rs_err_t pe = rs_combine_plan(in, two ? 2 : 1, 0, p, errstr,
                                      sizeof(errstr));
        FUZZ_CHECK(pe == RS_OK || errstr[0]);
        free(p);
    }
done:
    free(m);
    free(m2);
    free(buf);
    return 0;
}
#else
/* Seeds: real messages with a small real "lr" model. */
static const char *const fuzz_names[3] = {"amount_log", "count_1h", "since"};

static void fuzz_write(const char *dir, const char *name, int mode,
                       const uint8_t *b, size_t n) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(1); }
    uint8_t m = (uint8_t)mode;
    fwrite(&m, 1, 1, fp);
    fwrite(b, 1, n, fp);
    fclose(fp);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_sync_seeds DIR\n");
        return 2;
    }
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR;
    char err[256];
    rs_model_t *mod = rs_model_new(&c, 3, fuzz_names, err, sizeof(err));
    if (!mod) { fprintf(stderr, "%s\n", err); return 1; }
    rs_model_set_version(mod, 4);
    rs_model_set_version_tag(mod, "node-1");
    uint8_t *mb;
    size_t ml;
    rs_model_save_mem(mod, &mb, &ml);
    rs_combine_msg_t *m = calloc(1, sizeof(*m));
    rs_strlcpy(m->instance, "node-1", sizeof(m->instance));
    rs_strlcpy(m->version, rs_model_version(mod), sizeof(m->version));
    m->produced_ms = 1767225600000LL;
    rs_know_add(&m->know, "node-1", 40, 20, 400);
    rs_know_add(&m->know, "lr-0a0b0c0d-2", 10, 10, 100);
    m->model = mb;
    m->model_len = ml;
    for (int k = 0; k < 3; k++) {
        if (k == 1) {
            m->flags = RS_COMBINE_MSG_COMBINED;
            m->ninputs = 2;
            rs_strlcpy(m->inputs[0].version, "lr-0a0b0c0d-3.node-1",
                       sizeof(m->inputs[0].version));
            rs_strlcpy(m->inputs[1].version, "lr-0a0b0c0d-2.node-2",
                       sizeof(m->inputs[1].version));
            m->inputs[0].weight = 0.8;
            m->inputs[1].weight = 0.2;
        }
        if (k == 2) { /* a lineage file */
            m->model = NULL;
            m->model_len = 0;
        }
        uint8_t *b;
        size_t n;
        if (rs_combine_msg_encode(m, &b, &n, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        static const char *const nm[3] = {"local", "combined", "lineage"};
        char name[64];
        snprintf(name, sizeof(name), "%s.raw", nm[k]);
        fuzz_write(argv[1], name, 2, b, n);
        snprintf(name, sizeof(name), "%s.repair", nm[k]);
        fuzz_write(argv[1], name, 3, b, n);
        rs_free(b);
    }
    rs_free(mb);
    free(m);
    rs_model_destroy(mod);
    return 0;
}
#endif
