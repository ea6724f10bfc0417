/* fuzz_files.h -- shared setup of the file-reader fuzz targets
 * (fuzz_model_file.c, fuzz_ckpt_file.c) and of their seed maker
 * (fuzz_make_seeds.c).
 *
 * The readers take a path, so the input goes to a memfd and is read back
 * through /proc/self/fd/N: the reader's real open/fstat/read path, no
 * file system.  Files the oracles write (rs_model_save,
 * rs_features_checkpoint_write: tmp + fsync + rename) go to /dev/shm when
 * it is writable.
 *
 * Both file formats are checksummed, so raw mutations almost never pass
 * the envelope.  The first input byte is a mode: bit 0 set = "repair":
 * the harness recomputes the lengths and checksums of the rest before
 * the reader sees it, so mutations reach the parser behind the checksum;
 * bit 0 clear = the rest as it is (the envelope checks themselves).
 *
 * The configurations are the real defaults with small buffers, so a load
 * costs microseconds; the seed maker uses the same ones (a checkpoint
 * loads only into a handle of the same layout and pool sizes).
 */
#ifndef RS_FUZZ_FILES_H
#define RS_FUZZ_FILES_H

#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "features/features.h"
#include "model/model.h"
#include "proto/proto.h"

#define FUZZ_CHECK(c)                                                      \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "%s:%d: oracle failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                         \
            abort();                                                       \
        }                                                                  \
    } while (0)

#define FUZZ_MODE_REPAIR 0x1u

/* Little-endian helpers (the formats are little-endian). */
static inline void fuzz_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fuzz_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t fuzz_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* data[size] into a new memfd; *path gets "/proc/self/fd/N".  Returns the
 * fd (caller closes) or aborts: the harness itself must not fail. */
static inline int fuzz_memfd(const void *data, size_t size, char *path,
                             size_t path_size) {
    int fd = memfd_create("rs-fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    const uint8_t *p = data;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, p + off, size - off);
        FUZZ_CHECK(w > 0);
        off += (size_t)w;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

/* Triage: with FUZZ_SAVE=FILE in the environment, write the file the
 * reader is about to get (after any repair) to FILE. */
static inline void fuzz_save(const void *data, size_t size) {
    const char *p = getenv("FUZZ_SAVE");
    if (!p || !*p) return;
    FILE *fp = fopen(p, "wb");
    FUZZ_CHECK(fp != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, fp) == size);
    FUZZ_CHECK(fclose(fp) == 0);
}

/* A scratch file path for the round-trip oracles (one per process). */
static inline const char *fuzz_scratch(const char *what) {
    static char path[256];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof(path), "%s/rs-fuzz-%s-%d", dir, what, (int)getpid());
    return path;
}

/* The model conf of the service's defaults with small buffers (the
 * architecture of a "seq" file comes from the file). */
static inline void fuzz_model_conf(rs_model_conf_t *c) {
    rs_model_conf_init(c);
    c->batch_max = 4;
    c->seq.max_entities = 8;  /* must exceed batch_max */
}

/* The cards preset with small pools. */
static inline void fuzz_features_conf(rs_features_conf_t *c) {
    rs_features_conf_init(c);
    c->max_keys = 32;
    c->max_counterparties = 32;
    c->history = 8;
    c->labels_per_key = 4;
    c->label_index = 64;
}

/* Deterministic card event i: 5 cards, 3 merchants, a minute apart. */
static inline void fuzz_event(rs_event_t *ev, int i) {
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->id, sizeof(ev->id), "tx-%d", i);
    snprintf(ev->type, sizeof(ev->type), "card_tx");
    snprintf(ev->entity_id, sizeof(ev->entity_id), "card-%d", i % 5);
    snprintf(ev->counterparty_id, sizeof(ev->counterparty_id), "m-%d", i % 3);
    ev->event_time_ms = 1767225600000LL + (int64_t)i * 60000;
    ev->amount = 1.0 + (i * 37) % 300;
    ev->n_categ = 1;
    snprintf(ev->categ[0].name, sizeof(ev->categ[0].name), "mcc");
    snprintf(ev->categ[0].value, sizeof(ev->categ[0].value), "%d",
             5411 + i % 4);
}

static inline void fuzz_label(rs_label_t *lb, int i, double value) {
    memset(lb, 0, sizeof(*lb));
    snprintf(lb->event_id, sizeof(lb->event_id), "tx-%d", i);
    snprintf(lb->entity_id, sizeof(lb->entity_id), "card-%d", i % 5);
    lb->value = value;
    lb->label_time_ms = 1767225600000LL + (int64_t)i * 60000 + 1000;
}

#endif /* RS_FUZZ_FILES_H */
