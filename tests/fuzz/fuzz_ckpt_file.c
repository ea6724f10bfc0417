/* fuzz_ckpt_file.c -- libFuzzer target for the feature checkpoint reader
 * (rs_features_checkpoint_read), the path `serve` takes at start with
 * service.checkpoint_path.
 *
 * Input: one mode byte, then the file (fuzz_files.h).  Mode bit 0
 * repairs the envelope: body length, body checksum (chained per 1 MiB
 * block) and header checksum are recomputed, so the mutations reach the
 * record parser (key records, ring items, labels, event-index records,
 * header counts).  The file goes to a memfd and is read through
 * /proc/self/fd/N into a feature engine of the cards preset with small
 * pools (the seeds were written by the same configuration, so their
 * layout fingerprint matches).
 *
 * Oracle: RS_OK, or RS_ERR_CORRUPT with a message naming the file (then
 * the state is empty).  A state that loads must be usable and must
 * survive a round trip: process events of the seeds' cards and apply
 * labels of the seeds' event ids (a corrupt state that was accepted shows
 * up here under ASan), write a checkpoint, read it into a second engine;
 * both then compute bit-identical features for the same events and
 * return the same codes for the same labels, and the blob comes back
 * unchanged.
 *
 * Seeds: tests/fuzz/corpus/fuzz_ckpt_file, made by fuzz_make_seeds.
 * FUZZ_VERBOSE=1 prints what the reader said for each input, and
 * FUZZ_SAVE=FILE writes the file the reader got (after the repair), to
 * reproduce a finding with the real binary (triage; it is written on
 * every call, so run it on one input: `TARGET FILE`).
 */
#include "fuzz_files.h"

/* Header layout of features/features_ckpt.c (rs_fe_ckhdr_t, 184 bytes):
 * body_len at 40, body_crc at 72, hdr_crc at 176 over bytes [0, 176). */
#define CK_HDR 184
#define CK_BODY_LEN 40
#define CK_BODY_CRC 72
#define CK_HDR_CRC 176
#define CK_BLOCK (1u << 20)

static rs_features_t *fuzz_f, *fuzz_g;
static int fuzz_dim;

static void fuzz_init(void) {
    if (fuzz_f) return;
    rs_features_conf_t c;
    char es[256];
    fuzz_features_conf(&c);
    fuzz_f = rs_features_new(&c, es, sizeof(es));
    fuzz_g = rs_features_new(&c, es, sizeof(es));
    FUZZ_CHECK(fuzz_f && fuzz_g);
    fuzz_dim = rs_features_dim(fuzz_f);
}

static void fuzz_repair(uint8_t *file, size_t len) {
    if (len < CK_HDR) return;
    uint64_t body = len - CK_HDR;
    fuzz_put64(file + CK_BODY_LEN, body);
    uint32_t crc = 0;
    for (uint64_t off = 0; off < body; off += CK_BLOCK) {
        uint64_t n = body - off < CK_BLOCK ? body - off : CK_BLOCK;
        crc = rs_checksum32(file + CK_HDR + off, (size_t)n, crc);
    }
    fuzz_put32(file + CK_BODY_CRC, crc);
    fuzz_put32(file + CK_HDR_CRC, rs_checksum32(file, CK_HDR_CRC, 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fuzz_init();
    unsigned mode = data[0];
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    if (len) memcpy(file, data + 1, len);
    if (mode & FUZZ_MODE_REPAIR) fuzz_repair(file, len);
    char path[64], errstr[512];
    fuzz_save(file, len);
    int fd = fuzz_memfd(file, len, path, sizeof(path));
    free(file);

    void *blob = NULL;
    size_t blob_len = 0;
    errstr[0] = '\0';
    rs_err_t err = rs_features_checkpoint_read(fuzz_f, path, &blob, &blob_len,
                                               errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE")) /* triage: what the reader said */
        fprintf(stderr, "%zu bytes, mode %u: %s\n", len, mode,
                err == RS_OK ? "loaded" : errstr);
    close(fd);
    rs_features_stats_t st;
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT);
        FUZZ_CHECK(strstr(errstr, path) != NULL);
        FUZZ_CHECK(blob == NULL && blob_len == 0);
        rs_features_stats(fuzz_f, &st); /* reset to empty */
        FUZZ_CHECK(st.entity_keys == 0 && st.cp_keys == 0);
        return 0;
    }
    FUZZ_CHECK((blob == NULL) == (blob_len == 0));

    /* Round trip: write what was loaded, read it into the second engine. */
    const char *copy = fuzz_scratch("ckpt");
    err = rs_features_checkpoint_write(fuzz_f, copy, blob, blob_len, errstr,
                                       sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "checkpoint write: %s\n", errstr);
    FUZZ_CHECK(err == RS_OK);
    void *blob2 = NULL;
    size_t blob2_len = 0;
    err = rs_features_checkpoint_read(fuzz_g, copy, &blob2, &blob2_len, errstr,
                                      sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "re-read of a written checkpoint: %s\n", errstr);
    FUZZ_CHECK(err == RS_OK);
    unlink(copy);
    FUZZ_CHECK(blob2_len == blob_len &&
               (!blob_len || memcmp(blob, blob2, blob_len) == 0));
    free(blob);
    free(blob2);

    /* Use both states alike: events of the seeds' cards around and after
     * the seeds' times, labels of the seeds' event ids. */
    size_t bytes = (size_t)fuzz_dim * sizeof(float);
    float *x1 = malloc(bytes), *x2 = malloc(bytes);
    for (int i = 0; i < 24; i++) {
        rs_event_t ev;
        fuzz_event(&ev, 30 + i * 3);
        uint32_t fl1 = 0, fl2 = 0;
        rs_err_t e1 = rs_features_process(fuzz_f, &ev, x1, &fl1);
        rs_err_t e2 = rs_features_process(fuzz_g, &ev, x2, &fl2);
        FUZZ_CHECK(e1 == e2 && fl1 == fl2);
        if (e1 == RS_OK) FUZZ_CHECK(memcmp(x1, x2, bytes) == 0);
        rs_label_t lb;
        fuzz_label(&lb, i * 2, i % 3 ? 1.0 : 0.0);
        FUZZ_CHECK(rs_features_label(fuzz_f, &lb) ==
                   rs_features_label(fuzz_g, &lb));
    }
    free(x1);
    free(x2);
    rs_features_stats_t st2;
    rs_features_stats(fuzz_f, &st);
    rs_features_stats(fuzz_g, &st2);
    FUZZ_CHECK(st.entity_keys == st2.entity_keys && st.cp_keys == st2.cp_keys &&
               st.watermark_ms == st2.watermark_ms);
    return 0;
}
