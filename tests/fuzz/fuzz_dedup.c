/* fuzz_dedup.c -- libFuzzer target for the duplicate window's reader
 * (rs_dedup_read), the path the service takes at start to restore the
 * window from its checkpoint.
 *
 * Input: the serialized window (rs_dedup_write's format).  The reader is a
 * table of FUZZ_DEDUP_CAP entries that already holds entries of its own.
 *
 * Oracle: the read returns RS_OK or RS_ERR_CORRUPT (with a message); on an
 * error the table is empty.  After RS_OK: at most FUZZ_DEDUP_CAP entries,
 * each record well formed (has 0/1, version terminated), and write ->
 * read into a fresh table -> write gives the same bytes.
 *
 * Seeds: tests/fuzz/corpus/fuzz_dedup, real windows written by this file
 * built as fuzz_dedup_seeds (-DFUZZ_DEDUP_MAKE_SEEDS): empty, a few
 * entries (one without decision), more entries than the reader holds, and
 * many model versions.  Run it again when the format changes:
 *   cmake --build BUILD --target fuzz_dedup_seeds &&
 *   BUILD/tests/fuzz/fuzz_dedup_seeds tests/fuzz/corpus/fuzz_dedup
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoring/dedup.h"

#define FUZZ_DEDUP_CAP 64
#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

static void fuzz_fill(rs_dedup_t *d, int n, int versions) {
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ev-%d", i);
        uint64_t h;
        rs_dedup_check(d, rs_dedup_key("card-1", id), 1000LL * i, &h);
        if (i % 5 == 4) continue; /* no decision yet */
        rs_dedup_rec_t r;
        memset(&r, 0, sizeof(r));
        r.score = (float)i / (float)(n + 1);
        r.decision = (uint8_t)(i % 4);
        r.flags = (uint32_t)(i & 1);
        r.has = 1;
        snprintf(r.model_version, sizeof(r.model_version), "seq-fuzz-%d",
                 i % versions);
        rs_dedup_set(d, h, &r);
    }
}

#ifndef FUZZ_DEDUP_MAKE_SEEDS
typedef struct fuzz_visit_s {
    int n;
} fuzz_visit_t;

/* Every live entry's record is well formed. */
static int fuzz_visit(void *opaque, uint64_t key, int64_t t,
                      const rs_dedup_rec_t *rec) {
    fuzz_visit_t *v = opaque;
    (void)key;
    (void)t;
    v->n++;
    FUZZ_CHECK(rec->has <= 1);
    FUZZ_CHECK(memchr(rec->model_version, '\0', sizeof(rec->model_version)));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char errstr[256];
    rs_dedup_t *d = rs_dedup_new(FUZZ_DEDUP_CAP, 3600000, errstr,
                                 sizeof(errstr));
    fuzz_fill(d, 10, 3);
    rs_err_t err = rs_dedup_read(d, data, size, errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_dedup: %zu bytes: %s\n", size,
                err == RS_OK ? "ok" : errstr);
    rs_dedup_stats_t st;
    rs_dedup_stats(d, &st);
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT && errstr[0]);
        FUZZ_CHECK(st.entries == 0);
        rs_dedup_destroy(d);
        return 0;
    }
    FUZZ_CHECK(st.entries <= FUZZ_DEDUP_CAP);
    fuzz_visit_t v = {0};
    rs_dedup_foreach(d, fuzz_visit, &v);
    FUZZ_CHECK((uint64_t)v.n == st.entries);
    size_t len = rs_dedup_size(d), len2 = 0;
    uint8_t *a = malloc(len ? len : 1), *b = malloc(len ? len : 1);
    FUZZ_CHECK(rs_dedup_write(d, a, len, &len2) == RS_OK && len2 == len);
    rs_dedup_t *e = rs_dedup_new(FUZZ_DEDUP_CAP, 3600000, errstr,
                                 sizeof(errstr));
    FUZZ_CHECK(rs_dedup_read(e, a, len, errstr, sizeof(errstr)) == RS_OK);
    FUZZ_CHECK(rs_dedup_size(e) == len);
    FUZZ_CHECK(rs_dedup_write(e, b, len, &len2) == RS_OK && len2 == len);
    FUZZ_CHECK(memcmp(a, b, len) == 0);
    free(a);
    free(b);
    rs_dedup_destroy(e);
    rs_dedup_destroy(d);
    return 0;
}
#else
/* Seed writer: fuzz_dedup_seeds DIR */
static void fuzz_seed(const char *dir, const char *name, int n, int cap,
                      int versions) {
    char errstr[256], path[4096];
    rs_dedup_t *d = rs_dedup_new((uint64_t)cap, 3600000000LL, errstr,
                                 sizeof(errstr));
    fuzz_fill(d, n, versions);
    size_t len = rs_dedup_size(d), got = 0;
    uint8_t *buf = malloc(len);
    if (rs_dedup_write(d, buf, len, &got) != RS_OK) abort();
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, got, fp) != got) abort();
    fclose(fp);
    printf("%s: %zu bytes\n", path, got);
    free(buf);
    rs_dedup_destroy(d);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_dedup_seeds DIR\n");
        return 2;
    }
    fuzz_seed(argv[1], "empty", 0, 16, 1);
    fuzz_seed(argv[1], "few", 7, 16, 2);
    fuzz_seed(argv[1], "larger_than_reader", 100, 200, 5);
    fuzz_seed(argv[1], "many_versions", 60, 64, 60);
    return 0;
}
#endif
