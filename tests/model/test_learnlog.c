#define _GNU_SOURCE
/* test_learnlog.c -- the learning log (model/learnlog.h) and the learner
 * (model/learner.h): segments, index, maturity, restart, torn writes,
 * rewind; label joins, maturity negatives, late positives corrected, the
 * auto horizon and the refused configurations; the rehearsal of the first
 * failures' positives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <cmocka.h>

#include "model/learner.h"
#include "model/rul.h"
#include "model/learnlog.h"
#include "model/model.h"

#define DAY (86400000LL)
#define T0 1767225600000LL /* 2026-01-01 */

/* ------------------------------------------------------------- helpers */

static int rm1(const char *p, const struct stat *sb, int f, struct FTW *w) {
    (void)sb; (void)f; (void)w;
    return remove(p);
}

static char *tmpdir(void) {
    char *p = strdup("/tmp/rs-test-learnlog-XXXXXX");
    assert_non_null(mkdtemp(p));
    return p;
}

static void rmdir_all(char *p) {
    nftw(p, rm1, 16, FTW_DEPTH | FTW_PHYS);
    free(p);
}

/* A generic 64-byte record: header + 16 bytes of payload. */
#define R 64
static const rs_learnlog_meta_t META = {R, 0, 0x1234, 0x99, 4};

static void mk(uint8_t *r, uint64_t id, int64_t t) {
    memset(r, 0, R);
    rs_lrec_hdr_t *h = (rs_lrec_hdr_t *)r;
    h->id = id;
    h->entity = id % 7 + 1;
    h->t = t;
    h->score = (float)(id % 100) / 100.0f;
    memcpy(r + RS_LREC_HDR, &id, 8);
    rs_lrec_seal(r, R);
}

static rs_learnlog_t *open_log(const char *dir, const rs_learnlog_meta_t *m,
                               int64_t seg) {
    char e[512];
    rs_err_t err;
    rs_learnlog_t *lg = rs_learnlog_open(dir, 3, m, seg, &err, e, sizeof(e));
    if (!lg) fprintf(stderr, "open: %s\n", e);
    return lg;
}

static void append_n(rs_learnlog_t *lg, uint64_t id0, int n, int64_t t0,
                     int64_t dt) {
    uint8_t r[R];
    char e[256];
    for (int i = 0; i < n; i++) {
        mk(r, id0 + (uint64_t)i, t0 + dt * i);
        assert_int_equal(rs_learnlog_append(lg, r, 1, e, sizeof(e)), RS_OK);
    }
}

/* ------------------------------------------------------------- the log */

static void test_log_memory(void **st) {
    (void)st;
    rs_learnlog_t *lg = open_log("", &META, 1 << 20);
    assert_non_null(lg);
    append_n(lg, 1, 1000, T0, 1000);
    assert_int_equal(rs_learnlog_end(lg), 1000);
    assert_int_equal(rs_learnlog_index(lg), 1000);
    for (uint64_t id = 1; id <= 1000; id += 37) {
        uint64_t pos;
        assert_int_equal(rs_learnlog_find(lg, id, 0, &pos), RS_OK);
        assert_int_equal(pos, id - 1);
        const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
        assert_non_null(h);
        assert_int_equal(h->id, id);
        assert_int_equal(h->t, T0 + 1000 * (int64_t)(id - 1));
        /* with a time hint too */
        assert_int_equal(rs_learnlog_find(lg, id, h->t, &pos), RS_OK);
        assert_int_equal(pos, id - 1);
    }
    uint64_t pos;
    assert_int_equal(rs_learnlog_find(lg, 5000, 0, &pos), RS_ERR_NOTFOUND);
    assert_null(rs_learnlog_rec(lg, 1000));
    /* maturity: oldest first, stops at the first not mature */
    assert_int_equal(rs_learnlog_next_mature(lg, T0 + 2500, &pos), RS_OK);
    assert_int_equal(pos, 0);
    rs_learnlog_set_state(lg, 0, RS_LREC_LEARNED | RS_LREC_MATURED);
    /* a resolved record is skipped */
    rs_learnlog_set_state(lg, 1, RS_LREC_LEARNED | RS_LREC_LABELED);
    assert_int_equal(rs_learnlog_next_mature(lg, T0 + 2500, &pos), RS_OK);
    assert_int_equal(pos, 2);
    rs_learnlog_set_state(lg, 2, RS_LREC_LEARNED | RS_LREC_MATURED);
    assert_int_equal(rs_learnlog_next_mature(lg, T0 + 2500, &pos),
                     RS_ERR_NOTFOUND);
    rs_learnlog_stats_t s;
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.cursor, 3);
    assert_int_equal(s.end, 1000);
    rs_learnlog_close(lg);
}

static void test_log_segments_restart(void **st) {
    (void)st;
    char *dir = tmpdir();
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    assert_non_null(lg);
    /* ~16 k records per 1 MiB segment: 40 000 span three segments */
    append_n(lg, 1, 40000, T0, 60000);
    rs_learnlog_stats_t s;
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.segments, 3);
    rs_learnlog_index(lg);
    uint64_t pos;
    /* resolve the first 20 000: cursor past them */
    while (rs_learnlog_next_mature(lg, T0 + 20000LL * 60000, &pos) == RS_OK)
        rs_learnlog_set_state(lg, pos, RS_LREC_LEARNED | RS_LREC_MATURED);
    char e[512];
    assert_int_equal(rs_learnlog_sync(lg, e, sizeof(e)), RS_OK);
    /* a restart without a proper close (the mapping is the file) */
    rs_learnlog_close(lg);
    lg = open_log(dir, &META, 1 << 20);
    assert_non_null(lg);
    assert_int_equal(rs_learnlog_end(lg), 40000);
    rs_learnlog_index(lg);
    for (uint64_t id = 1; id <= 40000; id += 997) {
        assert_int_equal(rs_learnlog_find(lg, id, 0, &pos), RS_OK);
        assert_int_equal(pos, id - 1);
    }
    /* the states and the cursor survived */
    assert_int_equal(rs_learnlog_next_mature(lg, T0 + 30000LL * 60000, &pos),
                     RS_OK);
    assert_int_equal(pos, 20000);
    assert_int_equal(((const rs_lrec_hdr_t *)rs_learnlog_rec(lg, 5))->state,
                     RS_LREC_LEARNED | RS_LREC_MATURED);
    /* retention: the first segment is wholly resolved and old */
    assert_int_equal(rs_learnlog_truncate(lg, T0 + 30000LL * 60000), 1);
    assert_int_equal(rs_learnlog_find(lg, 10, 0, &pos), RS_ERR_NOTFOUND);
    assert_null(rs_learnlog_rec(lg, 9));
    assert_int_equal(rs_learnlog_find(lg, 30000, 0, &pos), RS_OK);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.segments, 2);
    assert_true(s.first > 0);
    rs_learnlog_close(lg);
    rmdir_all(dir);
}

static void test_log_torn_tail(void **st) {
    (void)st;
    char *dir = tmpdir();
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    append_n(lg, 1, 100, T0, 1000);
    rs_learnlog_close(lg);
    /* damage record 80 (a torn write): the log ends before it */
    char path[600];
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(pwrite(fd, junk, 8, 4096 + 80 * R + 20), 8);
    close(fd);
    lg = open_log(dir, &META, 1 << 20);
    assert_non_null(lg);
    assert_int_equal(rs_learnlog_end(lg), 80);
    /* appending goes on from there */
    append_n(lg, 1000, 5, T0, 1000);
    assert_int_equal(rs_learnlog_end(lg), 85);
    rs_learnlog_index(lg);
    uint64_t pos;
    assert_int_equal(rs_learnlog_find(lg, 1002, 0, &pos), RS_OK);
    assert_int_equal(pos, 82);
    rs_learnlog_close(lg);
    rmdir_all(dir);
}

static void test_log_rewind_and_meta(void **st) {
    (void)st;
    char *dir = tmpdir();
    char e[512];
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    append_n(lg, 1, 30000, T0, 1000); /* two segments */
    /* a checkpoint taken at 12 000: rewind there (second segment goes) */
    assert_int_equal(rs_learnlog_rewind(lg, 12000, e, sizeof(e)), RS_OK);
    assert_int_equal(rs_learnlog_end(lg), 12000);
    rs_learnlog_index(lg);
    uint64_t pos;
    assert_int_equal(rs_learnlog_find(lg, 12001, 0, &pos), RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_find(lg, 12000, 0, &pos), RS_OK);
    /* the input after it is logged again */
    append_n(lg, 12001, 10, T0, 1000);
    rs_learnlog_index(lg);
    assert_int_equal(rs_learnlog_find(lg, 12005, 0, &pos), RS_OK);
    assert_int_equal(pos, 12004);
    assert_int_equal(rs_learnlog_rewind(lg, 99999, e, sizeof(e)),
                     RS_ERR_INVALID);
    rs_learnlog_close(lg);
    /* another model's records: refused, naming what differs */
    rs_learnlog_meta_t other = META;
    other.arch = 0x4321;
    rs_err_t err;
    assert_null(rs_learnlog_open(dir, 3, &other, 1 << 20, &err, e, sizeof(e)));
    assert_int_equal(err, RS_ERR_CONFIG);
    assert_non_null(strstr(e, "architecture"));
    rmdir_all(dir);
}

/* The .idx header of segment `first` of a log in dir: {slots, indexed}. */
static void idx_hdr(const char *dir, uint64_t first, uint64_t *slots,
                    uint64_t *indexed) {
    char path[600];
    snprintf(path, sizeof(path), "%s/%020llu.idx", dir,
             (unsigned long long)first);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint64_t h[4];
    assert_int_equal(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    *slots = h[2];
    *indexed = h[3];
}

static void find_ok(rs_learnlog_t *lg, uint64_t id, uint64_t want) {
    uint64_t pos = 0;
    assert_int_equal(rs_learnlog_find(lg, id, 0, &pos), RS_OK);
    assert_int_equal(pos, want);
}

/* Run f(dir) in a child that exits without closing the log (a crash:
 * what it wrote through the mappings is in the files, nothing else). */
static void crash_child(const char *dir, void (*f)(const char *dir)) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        f(dir);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 1 MiB segments of 64-byte records: 16 320 records, a full table of
 * 32 768 slots, RAM tables up to 4 096 slots (2 867 keys at 70 %). */
static void child_fill(const char *dir) { /* seals segment 0, 1 000 in RAM */
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    if (!c || rs_learnlog_end(c) != 2000) _exit(3);
    append_n(c, 2001, 15320, T0, 1000);
    rs_learnlog_index(c);
}
static void child_spill(const char *dir) { /* segment 1 moves to the file */
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    if (!c || rs_learnlog_end(c) != 17320) _exit(3);
    append_n(c, 17321, 3000, T0, 1000);
    rs_learnlog_index(c);
}
static void child_rewind(const char *dir) { /* over the table in the file */
    char e[256];
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    if (!c || rs_learnlog_rewind(c, 17820, e, sizeof(e)) != RS_OK) _exit(3);
    append_n(c, 900001, 50, T0, 1000);
    rs_learnlog_index(c);
}

/* The index of the segment being written lives in RAM and grows with its
 * records up to an eighth of the full table, then moves to the file's
 * table (as at a seal); a table still in RAM reaches the file as it is at
 * close; after a crash (no close) the records after what the file holds
 * are indexed again; a rewind or a damaged table never leaves a stale
 * entry. */
static void test_log_index_ram(void **st) {
    (void)st;
    /* in memory, many moves and seals: 100 000 records */
    rs_learnlog_t *lg = open_log("", &META, 1 << 20);
    append_n(lg, 1, 100000, T0, 1000);
    uint8_t r[R];
    char e[512];
    mk(r, 99000, T0); /* a repeat in the same segment: the first wins */
    assert_int_equal(rs_learnlog_append(lg, r, 1, e, sizeof(e)), RS_OK);
    assert_int_equal(rs_learnlog_index(lg), 100001);
    for (uint64_t id = 1; id <= 100000; id++) find_ok(lg, id, id - 1);
    uint64_t pos;
    assert_int_equal(rs_learnlog_find(lg, 100002, 0, &pos), RS_ERR_NOTFOUND);
    rs_learnlog_close(lg);

    char *dir = tmpdir();
    uint64_t slots, indexed;
    lg = open_log(dir, &META, 1 << 20);
    append_n(lg, 1, 2000, T0, 1000);
    rs_learnlog_index(lg);
    find_ok(lg, 1234, 1233);
    /* before any close or seal the file holds no table */
    idx_hdr(dir, 0, &slots, &indexed);
    assert_int_equal(slots, 0);
    assert_int_equal(indexed, 0);
    rs_learnlog_close(lg);
    /* 2 000 keys at <= 70 %: 4 096 slots, not the 32 768 of a full one */
    idx_hdr(dir, 0, &slots, &indexed);
    assert_int_equal(slots, 4096);
    assert_int_equal(indexed, 2000);

    /* a crash with segment 0 sealed and segment 1's index in RAM */
    crash_child(dir, child_fill);
    idx_hdr(dir, 0, &slots, &indexed);
    assert_int_equal(slots, 32768);
    assert_int_equal(indexed, 16320);
    idx_hdr(dir, 16320, &slots, &indexed);
    assert_int_equal(indexed, 0);
    lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_end(lg), 17320);
    rs_learnlog_index(lg);
    for (uint64_t id = 1; id <= 17320; id += 7) find_ok(lg, id, id - 1);
    rs_learnlog_close(lg);

    /* a crash after segment 1's table moved to the file (kept current) */
    crash_child(dir, child_spill);
    idx_hdr(dir, 16320, &slots, &indexed);
    assert_int_equal(slots, 32768);
    assert_int_equal(indexed, 4000);
    lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_end(lg), 20320);
    rs_learnlog_index(lg);
    for (uint64_t id = 1; id <= 20320; id += 3) find_ok(lg, id, id - 1);
    rs_learnlog_close(lg);

    /* a rewind over records the file's table names, then a crash */
    crash_child(dir, child_rewind);
    lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_end(lg), 17870);
    rs_learnlog_index(lg);
    find_ok(lg, 900010, 17829);
    find_ok(lg, 17800, 17799);
    assert_int_equal(rs_learnlog_find(lg, 17821, 0, &pos), RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_find(lg, 19000, 0, &pos), RS_ERR_NOTFOUND);
    /* grown past the RAM bound again: the stale full table was cleared */
    append_n(lg, 700001, 2500, T0, 1000);
    rs_learnlog_index(lg);
    find_ok(lg, 702000, 17870 + 1999);
    assert_int_equal(rs_learnlog_find(lg, 19500, 0, &pos), RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_find(lg, 20000, 0, &pos), RS_ERR_NOTFOUND);
    /* a rewind and a clean close: the small table from RAM */
    assert_int_equal(rs_learnlog_rewind(lg, 16420, e, sizeof(e)), RS_OK);
    append_n(lg, 800001, 10, T0, 1000);
    rs_learnlog_close(lg);
    idx_hdr(dir, 16320, &slots, &indexed);
    assert_int_equal(slots, 1024);
    assert_int_equal(indexed, 100); /* the 10 new ones were not indexed */
    lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_end(lg), 16430);
    rs_learnlog_index(lg);
    find_ok(lg, 800003, 16422);
    find_ok(lg, 16400, 16399);
    assert_int_equal(rs_learnlog_find(lg, 900010, 0, &pos), RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_find(lg, 700001, 0, &pos), RS_ERR_NOTFOUND);
    rs_learnlog_close(lg);

    /* a damaged table (every slot taken): dropped, the records indexed
     * again (a probe over it would never end) */
    char path[600];
    snprintf(path, sizeof(path), "%s/%020d.idx", dir, 16320);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[4096];
    memset(junk, 0xa5, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096), 4096);
    close(fd);
    lg = open_log(dir, &META, 1 << 20);
    rs_learnlog_index(lg);
    find_ok(lg, 800010, 16429);
    find_ok(lg, 16400, 16399);
    find_ok(lg, 100, 99);
    assert_int_equal(rs_learnlog_find(lg, 0xa5a5a5a5a5a5a5a5ull, 0, &pos),
                     RS_ERR_NOTFOUND);
    rs_learnlog_close(lg);
    rmdir_all(dir);
}

static off_t fsize(const char *dir, uint64_t first, const char *ext) {
    char path[600];
    snprintf(path, sizeof(path), "%s/%020llu.%s", dir,
             (unsigned long long)first, ext);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* The files grow with their records: a new log has no file until its
 * first segment is made; a fresh 64 MiB segment takes its
 * header page and a first 4 MiB step (the .idx its header page), the .log
 * grows in 4 MiB steps ahead of the writer, the .idx gets the table at
 * close; a log cut short (the file ends inside the records) opens at the
 * last whole record of the file; a rolled segment is full size. */
static void test_log_files_grow(void **st) {
    (void)st;
    const off_t P = 4096, G = 4 << 20;
    char *dir = tmpdir();
    rs_learnlog_t *lg = open_log(dir, &META, 64 << 20);
    assert_non_null(lg);
    {
        char path[600];
        snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
        assert_int_equal(access(path, F_OK), -1);
    }
    rs_learnlog_stats_t s;
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.bytes, 0);
    append_n(lg, 1, 1, T0, 1000); /* the first segment */
    assert_int_equal(fsize(dir, 0, "log"), P + G);
    assert_int_equal(fsize(dir, 0, "idx"), P);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.bytes, (uint64_t)(P + G + P));
    append_n(lg, 2, 99999, T0 + 1000, 1000);
    off_t ls = fsize(dir, 0, "log");
    assert_true(ls >= P + 100000 * R);
    assert_true(ls <= P + 100000 * R + 2 * G);
    assert_int_equal(ls % G, 0);
    assert_int_equal(fsize(dir, 0, "idx"), P);
    rs_learnlog_index(lg);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.bytes, (uint64_t)(ls + P));
    rs_learnlog_close(lg);
    uint64_t slots, indexed;
    idx_hdr(dir, 0, &slots, &indexed);
    assert_int_equal(indexed, 100000);
    assert_int_equal(fsize(dir, 0, "idx"), P + (off_t)slots * 16);
    /* reopened: the table is loaded, appending goes on */
    lg = open_log(dir, &META, 64 << 20);
    assert_non_null(lg);
    assert_int_equal(rs_learnlog_end(lg), 100000);
    append_n(lg, 100001, 10, T0, 1000);
    rs_learnlog_index(lg);
    find_ok(lg, 77, 76);
    find_ok(lg, 100005, 100004);
    rs_learnlog_close(lg);
    /* cut inside the records (the index names records past the end):
     * the records the file holds are checked and indexed again */
    char path[600];
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    assert_int_equal(truncate(path, P + 50000 * R + 10), 0);
    lg = open_log(dir, &META, 64 << 20);
    assert_non_null(lg);
    assert_int_equal(rs_learnlog_end(lg), 50000);
    append_n(lg, 900001, 3000, T0, 1000); /* past the cut: the file grows */
    assert_true(fsize(dir, 0, "log") >= P + 53000 * R);
    rs_learnlog_index(lg);
    find_ok(lg, 50000, 49999);
    find_ok(lg, 902000, 51999);
    uint64_t pos;
    assert_int_equal(rs_learnlog_find(lg, 60000, 0, &pos), RS_ERR_NOTFOUND);
    rs_learnlog_close(lg);
    rmdir_all(dir);
    /* 1 MiB segments: a rolled segment is whole, the next one grows */
    dir = tmpdir();
    lg = open_log(dir, &META, 1 << 20);
    append_n(lg, 1, 20000, T0, 1000); /* 16 320 per segment */
    assert_int_equal(fsize(dir, 0, "log"), 1 << 20);
    assert_int_equal(fsize(dir, 16320, "log"), 1 << 20);
    rs_learnlog_index(lg);
    assert_int_equal(fsize(dir, 0, "idx"), P + 32768 * 16); /* sealed */
    rs_learnlog_close(lg);
    lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_end(lg), 20000);
    rs_learnlog_index(lg);
    find_ok(lg, 5, 4);
    find_ok(lg, 19999, 19998);
    rs_learnlog_close(lg);
    rmdir_all(dir);
}

/* ------------------------------------------- new segments made ahead */

/* 1 MiB segments of 64-byte records: 16 320 records each, so segments
 * begin at 0, 16 320, 32 640, 48 960, 65 280; a spare is made once the
 * segment being written holds 8 160. */
#define SEG 16320u

/* Record of id `id` (its time follows from it: any record can be
 * rebuilt to compare). */
static void mk_id(uint8_t *r, uint64_t id) { mk(r, id, T0 + 1000 * (int64_t)id); }

/* Append ids id0 .. id0 + n - 1 in calls of `chunk` records (segment ends
 * fall inside calls); prep: rs_learnlog_prepare after each call (as the
 * trainer does), else never (the writer makes every segment itself). */
static void append_chunks(rs_learnlog_t *lg, uint64_t id0, int n, int chunk,
                          int prep) {
    uint8_t *buf = malloc((size_t)chunk * R);
    char e[256];
    for (int i = 0; i < n;) {
        int k = chunk < n - i ? chunk : n - i;
        for (int j = 0; j < k; j++) mk_id(buf + (size_t)j * R, id0 + (uint64_t)(i + j));
        assert_int_equal(rs_learnlog_append(lg, buf, k, e, sizeof(e)), RS_OK);
        if (prep) assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
        i += k;
    }
    free(buf);
}

/* Records 0 .. n - 1 are ids 1 .. n, byte for byte; the end is n; a few
 * are found through the index. */
static void check_recs(rs_learnlog_t *lg, uint64_t n) {
    uint8_t want[R];
    assert_int_equal(rs_learnlog_end(lg), n);
    rs_learnlog_index(lg);
    for (uint64_t p = 0; p < n; p++) {
        const uint8_t *r = rs_learnlog_rec(lg, p);
        assert_non_null(r);
        mk_id(want, p + 1);
        if (memcmp(r, want, R)) fail_msg("record %llu differs", (unsigned long long)p);
    }
    assert_null(rs_learnlog_rec(lg, n));
    for (uint64_t id = 1; id <= n; id += 4999) find_ok(lg, id, id - 1);
    find_ok(lg, n, n - 1);
}

/* Files in dir whose names end with `suffix`. */
static int nfiles(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    size_t ls = strlen(suffix);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        n += l >= ls && !strcmp(de->d_name + l - ls, suffix);
    }
    closedir(d);
    return n;
}

static int has_file(const char *dir, uint64_t first, const char *ext) {
    char path[600];
    snprintf(path, sizeof(path), "%s/%020llu.%s", dir,
             (unsigned long long)first, ext);
    return access(path, F_OK) == 0;
}

static void mv_file(const char *dir, uint64_t first, const char *from,
                    const char *to) {
    char a[600], b[600];
    snprintf(a, sizeof(a), "%s/%020llu.%s", dir, (unsigned long long)first, from);
    snprintf(b, sizeof(b), "%s/%020llu.%s", dir, (unsigned long long)first, to);
    assert_int_equal(rename(a, b), 0);
}

static void rm_file(const char *dir, uint64_t first, const char *ext) {
    char a[600];
    snprintf(a, sizeof(a), "%s/%020llu.%s", dir, (unsigned long long)first, ext);
    assert_int_equal(unlink(a), 0);
}

static void same_file(const char *d1, const char *d2, uint64_t first,
                      const char *ext) {
    char p1[600], p2[600];
    snprintf(p1, sizeof(p1), "%s/%020llu.%s", d1, (unsigned long long)first, ext);
    snprintf(p2, sizeof(p2), "%s/%020llu.%s", d2, (unsigned long long)first, ext);
    FILE *f1 = fopen(p1, "rb"), *f2 = fopen(p2, "rb");
    assert_non_null(f1);
    assert_non_null(f2);
    static uint8_t b1[1 << 16], b2[1 << 16];
    size_t n1, n2;
    do {
        n1 = fread(b1, 1, sizeof(b1), f1);
        n2 = fread(b2, 1, sizeof(b2), f2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
    } while (n1);
    fclose(f1);
    fclose(f2);
}

/* Appends across several segment ends read back identically whether the
 * next segments were made ahead (rs_learnlog_prepare: the spare, renamed
 * into place at the roll) or by the writer at the roll: same records,
 * same .log files byte for byte, after a reopen too; the spare path took
 * every roll's segment ready-made; a spare never taken is dropped at
 * close and at a rewind (which may leave it for a gone end), and rolls
 * after the rewind work either way.  In memory likewise. */
static void test_log_spare_roll(void **st) {
    (void)st;
    char *dirs[2];
    rs_learnlog_stats_t s;
    for (int prep = 0; prep < 2; prep++) {
        char *dir = dirs[prep] = tmpdir();
        rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
        assert_non_null(lg);
        append_chunks(lg, 1, 60000, 777, prep);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.segments, 4);
        assert_int_equal(s.rolls, 3);
        assert_int_equal(s.spares, prep ? 3 : 0);
        /* 60 000 is past the half of the last segment: its successor is
         * ready too */
        assert_int_equal(s.prepared, prep ? 4 : 0);
        assert_int_equal(nfiles(dir, ".spare"), prep ? 2 : 0);
        assert_int_equal(nfiles(dir, ".new"), 0);
        assert_false(has_file(dir, 4 * SEG, "log"));
        check_recs(lg, 60000);
        rs_learnlog_close(lg);
        assert_int_equal(nfiles(dir, ".spare"), 0);
        lg = open_log(dir, &META, 1 << 20);
        assert_non_null(lg);
        check_recs(lg, 60000);
        rs_learnlog_close(lg);
    }
    for (uint64_t f = 0; f < 4 * SEG; f += SEG) same_file(dirs[0], dirs[1], f, "log");
    assert_false(has_file(dirs[1], 4 * SEG, "log"));

    /* a rewind drops a spare made for an end that is gone; rolls after
     * it, with and without one, read back the same */
    for (int prep = 0; prep < 2; prep++) {
        char e[256];
        rs_learnlog_t *lg = open_log(dirs[prep], &META, 1 << 20);
        assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
        assert_int_equal(nfiles(dirs[prep], ".spare"), 2); /* for 65 280 */
        assert_int_equal(rs_learnlog_rewind(lg, 20000, e, sizeof(e)), RS_OK);
        assert_int_equal(nfiles(dirs[prep], ".spare"), 0);
        append_chunks(lg, 20001, 30000, 1000, prep);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.rolls, 2); /* at 32 640 and 48 960 */
        assert_int_equal(s.spares, prep ? 2 : 0);
        check_recs(lg, 50000);
        rs_learnlog_close(lg);
    }
    for (uint64_t f = 0; f < 4 * SEG; f += SEG) same_file(dirs[0], dirs[1], f, "log");
    rmdir_all(dirs[0]);
    rmdir_all(dirs[1]);

    /* in memory: the same hand-over */
    rs_learnlog_t *lg = open_log("", &META, 1 << 20);
    append_chunks(lg, 1, 40000, 1000, 1);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.rolls, 2);
    assert_int_equal(s.spares, 2);
    check_recs(lg, 40000);
    rs_learnlog_close(lg);
}

static void child_half(const char *dir) { /* a spare made, never used */
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    if (!c) _exit(3);
    append_chunks(c, 1, 10000, 500, 1);
}
static void child_full(const char *dir) { /* full: the roll is next */
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    if (!c) _exit(3);
    append_chunks(c, 1, (int)SEG, 1000, 1);
}

/* A crash at any point of making and beginning a segment leaves a log
 * that opens exactly as written: a spare made ahead but never used (in
 * the middle of a segment, or at its full end), one whose creation was
 * cut short (only its .log made; the writer's own .new likewise), a stop
 * between the roll's two renames (.log in place, .idx not: rebuilt) or
 * after both before the first append (an empty last segment).  Each time
 * the temporary files are gone, the records and the end are those
 * written, and appending goes on across the next segment ends, after a
 * reopen too. */
static void test_log_spare_crash(void **st) {
    (void)st;
    rs_learnlog_stats_t s;
    /* a spare made while the segment is half full */
    char *dir = tmpdir();
    crash_child(dir, child_half);
    assert_true(has_file(dir, SEG, "log.spare"));
    assert_true(has_file(dir, SEG, "idx.spare"));
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    assert_non_null(lg);
    assert_int_equal(nfiles(dir, ".spare"), 0);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.segments, 1);
    check_recs(lg, 10000);
    append_chunks(lg, 10001, 20000, 999, 0);
    check_recs(lg, 30000);
    rs_learnlog_close(lg);
    lg = open_log(dir, &META, 1 << 20);
    check_recs(lg, 30000);
    rs_learnlog_close(lg);
    rmdir_all(dir);

    /* the segment full, its successor made; stopped at each step of the
     * roll */
    for (int k = 0; k < 5; k++) {
        dir = tmpdir();
        crash_child(dir, child_full);
        assert_true(has_file(dir, SEG, "log.spare"));
        switch (k) {
        case 0: break;                                  /* never begun */
        case 1: rm_file(dir, SEG, "idx.spare"); break;   /* cut short */
        case 2: mv_file(dir, SEG, "log.spare", "log"); break; /* 1 rename */
        case 3: mv_file(dir, SEG, "log.spare", "log");      /* both */
                mv_file(dir, SEG, "idx.spare", "idx"); break;
        case 4: mv_file(dir, SEG, "log.spare", "log.new");  /* the writer's */
                mv_file(dir, SEG, "idx.spare", "idx.new"); break;
        }
        lg = open_log(dir, &META, 1 << 20);
        assert_non_null(lg);
        assert_int_equal(nfiles(dir, ".spare") + nfiles(dir, ".new"), 0);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.segments, k == 2 || k == 3 ? 2 : 1);
        check_recs(lg, SEG);
        append_chunks(lg, SEG + 1, 20000, 700, k & 1);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.segments, 3);
        check_recs(lg, SEG + 20000);
        rs_learnlog_close(lg);
        lg = open_log(dir, &META, 1 << 20);
        check_recs(lg, SEG + 20000);
        rs_learnlog_close(lg);
        rmdir_all(dir);
    }
}

/* The empty state of a new log: nothing kept, nothing found, end 0;
 * nseg segments (0, or an empty segment 0). */
static void check_empty_n(rs_learnlog_t *lg, int nseg) {
    char e[256];
    uint64_t pos;
    rs_learnlog_stats_t s;
    assert_int_equal(rs_learnlog_end(lg), 0);
    assert_int_equal(rs_learnlog_index(lg), 0);
    assert_null(rs_learnlog_rec(lg, 0));
    assert_int_equal(rs_learnlog_find(lg, 1, 0, &pos), RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_next_mature(lg, INT64_MAX, &pos),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_learnlog_truncate(lg, INT64_MAX), 0);
    assert_int_equal(rs_learnlog_sync(lg, e, sizeof(e)), RS_OK);
    assert_int_equal(rs_learnlog_rewind(lg, 0, e, sizeof(e)), RS_OK);
    assert_int_equal(rs_learnlog_rewind(lg, 1, e, sizeof(e)), RS_ERR_INVALID);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.segments, nseg);
    if (!nseg) assert_int_equal(s.bytes, 0);
}

static void check_empty(rs_learnlog_t *lg) { check_empty_n(lg, 0); }

/* The first segment of a new log (issue 12): open makes no file; the
 * resolver's first rs_learnlog_prepare makes segment 0 at once (under
 * its .spare names) and the writer's first append only renames it into
 * place (first_ready 1, made 0); without a prepare the first append makes
 * it (made 1).  Either way the records read back, after a reopen too, and
 * the .log files are byte-identical.  A first segment made and never
 * begun is deleted at close (the log opens new again); the process totals
 * count each case.  In memory likewise. */
static void test_log_first_segment(void **st) {
    (void)st;
    char e[256];
    char *dirs[2];
    rs_learnlog_stats_t s;
    rs_learnlog_totals_t t0, t1;
    for (int prep = 0; prep < 2; prep++) {
        char *dir = dirs[prep] = tmpdir();
        rs_learnlog_totals(&t0);
        rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
        assert_non_null(lg);
        assert_int_equal(nfiles(dir, "log") + nfiles(dir, "idx") +
                             nfiles(dir, "spare") + nfiles(dir, "new"), 0);
        check_empty(lg);
        if (prep) {
            assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
            assert_true(has_file(dir, 0, "log.spare"));
            assert_true(has_file(dir, 0, "idx.spare"));
            assert_false(has_file(dir, 0, "log"));
            check_empty(lg); /* made, not begun: still empty */
            assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
            rs_learnlog_stats(lg, &s);
            assert_int_equal(s.prepared, 1); /* once */
        }
        append_chunks(lg, 1, 20000, 1000, 0); /* and one roll, no spare */
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.first_ready, prep ? 1 : 0);
        assert_int_equal(s.made, prep ? 1 : 2);
        assert_int_equal(s.rolls, 1);
        assert_int_equal(s.spares, 0);
        assert_int_equal(s.segments, 2);
        assert_int_equal(nfiles(dir, "spare") + nfiles(dir, "new"), 0);
        check_recs(lg, 20000);
        rs_learnlog_totals(&t1);
        assert_int_equal(t1.begun_ready - t0.begun_ready, prep ? 1 : 0);
        assert_int_equal(t1.begun_made - t0.begun_made, prep ? 1 : 2);
        assert_int_equal(t1.rolls - t0.rolls, 1);
        assert_int_equal(t1.prepared - t0.prepared, prep ? 1 : 0);
        assert_int_equal(t1.segments - t0.segments, 2);
        rs_learnlog_close(lg);
        rs_learnlog_totals(&t1);
        assert_int_equal(t1.segments, t0.segments);
        lg = open_log(dir, &META, 1 << 20);
        check_recs(lg, 20000);
        rs_learnlog_close(lg);
    }
    for (uint64_t f = 0; f < 2 * SEG; f += SEG) same_file(dirs[0], dirs[1], f, "log");
    rmdir_all(dirs[0]);
    rmdir_all(dirs[1]);

    /* made ahead, never begun: deleted at close, the log is new again */
    char *dir = tmpdir();
    rs_learnlog_totals(&t0);
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
    assert_int_equal(rs_learnlog_rewind(lg, 0, e, sizeof(e)), RS_OK);
    rs_learnlog_close(lg);
    assert_int_equal(nfiles(dir, "spare") + nfiles(dir, "log"), 0);
    rs_learnlog_totals(&t1);
    assert_int_equal(t1.prepared - t0.prepared, 1);
    assert_int_equal(t1.dropped - t0.dropped, 1);
    lg = open_log(dir, &META, 1 << 20);
    check_empty(lg);
    rs_learnlog_close(lg);
    rmdir_all(dir);

    /* in memory: the same hand-over */
    lg = open_log("", &META, 1 << 20);
    check_empty(lg);
    assert_int_equal(rs_learnlog_prepare(lg, e, sizeof(e)), RS_OK);
    append_chunks(lg, 1, 20000, 1000, 1);
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.first_ready, 1);
    assert_int_equal(s.spares, 1);
    assert_int_equal(s.made, 0);
    check_recs(lg, 20000);
    rs_learnlog_close(lg);
}

static void child_first(const char *dir) { /* segment 0 made, not begun */
    rs_learnlog_t *c = open_log(dir, &META, 1 << 20);
    char e[256];
    if (!c || rs_learnlog_prepare(c, e, sizeof(e)) != RS_OK) _exit(3);
}

/* A crash at any point of making and beginning a new log's first segment
 * leaves a log that opens as written (empty): made but never begun,
 * creation cut short, stopped between the two renames (.log in place, its
 * .idx rebuilt), after both (an empty segment 0), or the writer's own
 * .new files.  Each time the temporary files are gone, the end is 0, and
 * appending goes on across a segment end, after a reopen too. */
static void test_log_first_crash(void **st) {
    (void)st;
    rs_learnlog_stats_t s;
    for (int k = 0; k < 5; k++) {
        char *dir = tmpdir();
        crash_child(dir, child_first);
        assert_true(has_file(dir, 0, "log.spare"));
        assert_true(has_file(dir, 0, "idx.spare"));
        switch (k) {
        case 0: break;                                 /* never begun */
        case 1: rm_file(dir, 0, "idx.spare"); break;    /* cut short */
        case 2: mv_file(dir, 0, "log.spare", "log"); break; /* 1 rename */
        case 3: mv_file(dir, 0, "log.spare", "log");        /* both */
                mv_file(dir, 0, "idx.spare", "idx"); break;
        case 4: mv_file(dir, 0, "log.spare", "log.new");    /* the writer's */
                mv_file(dir, 0, "idx.spare", "idx.new"); break;
        }
        rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
        assert_non_null(lg);
        assert_int_equal(nfiles(dir, ".spare") + nfiles(dir, ".new"), 0);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.segments, k == 2 || k == 3 ? 1 : 0);
        check_empty_n(lg, k == 2 || k == 3 ? 1 : 0);
        append_chunks(lg, 1, 20000, 700, k & 1);
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.segments, 2);
        check_recs(lg, 20000);
        rs_learnlog_close(lg);
        lg = open_log(dir, &META, 1 << 20);
        check_recs(lg, 20000);
        rs_learnlog_close(lg);
        rmdir_all(dir);
    }
}

/* The writer and the resolver on two threads, as in the service: the
 * resolver indexes, reads and makes spares while the writer appends
 * across segment ends (TSan checks the hand-over).  Which rolls find a
 * spare depends on timing, so only the records are asserted. */
typedef struct {
    rs_learnlog_t *lg;
    int n;
} spare_thr_t;

static void *spare_writer(void *arg) {
    spare_thr_t *t = arg;
    uint8_t buf[300 * R];
    char e[256];
    for (int i = 0; i < t->n;) {
        int k = 300 < t->n - i ? 300 : t->n - i;
        for (int j = 0; j < k; j++) mk_id(buf + (size_t)j * R, (uint64_t)(i + j + 1));
        if (rs_learnlog_append(t->lg, buf, k, e, sizeof(e)) != RS_OK) abort();
        i += k;
        sched_yield();
    }
    return NULL;
}

/* A new log handed to the resolver and written at once, as a partition
 * assigned and its first events are: the resolver's first prepare and
 * the writer's first append race for segment 0 (TSan checks it).  Which
 * one makes it depends on timing; asserted: the records, exactly one
 * first segment begun, and every segment made ahead either begun or
 * dropped (none lost, no file left behind). */
static void test_log_first_threads(void **st) {
    (void)st;
    char e[256];
    for (int i = 0; i < 8; i++) {
        char *dir = tmpdir();
        rs_learnlog_totals_t t0, t1;
        rs_learnlog_totals(&t0);
        rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
        spare_thr_t t = {lg, 20000};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, spare_writer, &t), 0);
        uint64_t seen = 0;
        uint8_t want[R];
        while (seen < (uint64_t)t.n) {
            if (rs_learnlog_prepare(lg, e, sizeof(e)) != RS_OK)
                fail_msg("prepare: %s", e);
            rs_learnlog_index(lg);
            uint64_t n = rs_learnlog_indexed(lg);
            for (; seen < n; seen++) {
                const uint8_t *r = rs_learnlog_rec(lg, seen);
                assert_non_null(r);
                mk_id(want, seen + 1);
                assert_memory_equal(r, want, R);
            }
            sched_yield();
        }
        assert_int_equal(pthread_join(th, NULL), 0);
        rs_learnlog_stats_t s;
        rs_learnlog_stats(lg, &s);
        assert_int_equal(s.rolls, 1);
        assert_int_equal(s.first_ready + s.spares + s.made, 2);
        check_recs(lg, 20000);
        rs_learnlog_close(lg);
        rs_learnlog_totals(&t1);
        assert_int_equal(t1.prepared - t0.prepared,
                         (t1.begun_ready - t0.begun_ready) +
                             (t1.dropped - t0.dropped));
        assert_int_equal(nfiles(dir, ".spare") + nfiles(dir, ".new"), 0);
        lg = open_log(dir, &META, 1 << 20);
        check_recs(lg, 20000);
        rs_learnlog_close(lg);
        rmdir_all(dir);
    }
}

static void test_log_spare_threads(void **st) {
    (void)st;
    char *dir = tmpdir();
    char e[256];
    rs_learnlog_t *lg = open_log(dir, &META, 1 << 20);
    spare_thr_t t = {lg, 60000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, spare_writer, &t), 0);
    uint8_t want[R];
    uint64_t seen = 0;
    while (seen < (uint64_t)t.n) {
        rs_learnlog_index(lg);
        if (rs_learnlog_prepare(lg, e, sizeof(e)) != RS_OK)
            fail_msg("prepare: %s", e);
        uint64_t n = rs_learnlog_indexed(lg);
        for (; seen < n; seen++) {
            const uint8_t *r = rs_learnlog_rec(lg, seen);
            assert_non_null(r);
            mk_id(want, seen + 1);
            assert_memory_equal(r, want, R);
        }
        sched_yield();
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    rs_learnlog_stats_t s;
    rs_learnlog_stats(lg, &s);
    assert_int_equal(s.rolls, 3);
    check_recs(lg, 60000);
    rs_learnlog_close(lg);
    lg = open_log(dir, &META, 1 << 20);
    check_recs(lg, 60000);
    rs_learnlog_close(lg);
    rmdir_all(dir);
}

/* ----------------------------------------------------------- the learner */

typedef struct fx_s {
    rs_model_conf_t conf;
    rs_model_t *m;
    rs_learnlog_t *lg;
    rs_learner_t *l;
    float x[4];
} fx_t;

static const char *NAMES[4] = {"a", "b", "c", "d"};

static void fx_new(fx_t *f, int kind, int64_t delay, int64_t horizon,
                   const char *dir) {
    memset(f, 0, sizeof(*f));
    rs_model_conf_init(&f->conf);
    f->conf.kind = kind;
    f->conf.label_delay = delay;
    f->conf.label_horizon = horizon;
    f->conf.seq.d_model = 8;
    f->conf.seq.history = 4;
    f->conf.seq.experts = 2;
    f->conf.seq.top_k = 1;
    f->conf.seq.expert_hidden = 8;
    f->conf.seq.buckets = 64;
    f->conf.seq.max_entities = 600;
    f->conf.batch_max = 16;
    f->conf.replay = 0; /* exact step counts */
    char e[256];
    f->m = rs_model_new(&f->conf, 4, NAMES, e, sizeof(e));
    assert_non_null(f->m);
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(f->m, &meta);
    rs_err_t err;
    f->lg = rs_learnlog_open(dir ? dir : "", 0, &meta, 1 << 20, &err, e,
                             sizeof(e));
    assert_non_null(f->lg);
    f->l = rs_learner_new(f->m, &f->conf);
    assert_int_equal(rs_learner_attach(f->l, f->lg), RS_OK);
}

static void fx_free(fx_t *f) {
    rs_learner_destroy(f->l);
    rs_learnlog_close(f->lg);
    rs_model_destroy(f->m);
}

static float fx_score(fx_t *f, const char *id, const char *ent, int64_t t,
                      float v) {
    rs_model_input_t in;
    memset(&in, 0, sizeof(in));
    for (int i = 0; i < 4; i++) f->x[i] = v * (float)(i + 1);
    in.event_id = id;
    in.entity_id = ent;
    in.event_time_ms = t;
    in.x = f->x;
    rs_model_output_t out;
    char e[256];
    assert_int_equal(rs_learner_forward(f->l, 0, f->m, &in, 1, &out, NULL,
                                        RS_MODEL_FWD_REMEMBER, e, sizeof(e)),
                     RS_OK);
    return out.score;
}

static rs_learner_res_t fx_label(fx_t *f, const char *id, double v,
                                 int64_t when, rs_err_t want) {
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    snprintf(lb.event_id, sizeof(lb.event_id), "%s", id);
    snprintf(lb.entity_id, sizeof(lb.entity_id), "e");
    lb.value = v;
    lb.label_time_ms = when;
    rs_learner_res_t r;
    assert_int_equal(rs_learner_label(f->l, 0, &lb, 0, -1, &r), want);
    return r;
}

static int fx_advance(fx_t *f, int64_t wm) {
    int n = 0, k;
    while ((k = rs_learner_advance(f->l, 0, wm, -1, 100, NULL, NULL)) > 0)
        n += k;
    return n;
}

/* The learner makes a new log's first segment when the log is attached
 * and the next segment ahead when it indexes (the trainer thread in the
 * service), so the writer's first append and its roll take them. */
static void test_learner_prepares_spare(void **st) {
    (void)st;
    fx_t f;
    char *dir = tmpdir();
    fx_new(&f, 0, 0, 7 * DAY, dir);
    rs_learnlog_meta_t meta;
    rs_learnlog_meta(f.lg, &meta);
    const size_t RS = meta.rec_size;
    const uint64_t cap = ((1u << 20) - 4096) / RS;
    uint8_t *r = calloc(1, RS);
    char e[256];
    rs_learnlog_stats_t s;
    rs_learnlog_stats(f.lg, &s); /* attached: its first segment is ready */
    assert_int_equal(s.prepared, 1);
    assert_int_equal(s.segments, 0);
    assert_true(has_file(dir, 0, "log.spare"));
    for (uint64_t i = 0; i < cap + 10; i++) {
        memset(r, 0, RS);
        rs_lrec_hdr_t *h = (rs_lrec_hdr_t *)r;
        h->id = i + 1;
        h->entity = i % 5 + 1;
        h->t = T0 + 1000 * (int64_t)i;
        rs_lrec_seal(r, RS);
        assert_int_equal(rs_learnlog_append(f.lg, r, 1, e, sizeof(e)), RS_OK);
        if (i == cap / 2 + 1) {
            rs_learnlog_stats(f.lg, &s);
            assert_int_equal(s.prepared, 1);
            rs_learner_observe_to(f.l, 0, rs_learnlog_end(f.lg));
            rs_learnlog_stats(f.lg, &s);
            assert_int_equal(s.prepared, 2);
        }
    }
    rs_learnlog_stats(f.lg, &s);
    assert_int_equal(s.first_ready, 1);
    assert_int_equal(s.rolls, 1);
    assert_int_equal(s.spares, 1);
    assert_int_equal(s.made, 0); /* the writer made none itself */
    free(r);
    fx_free(&f);
    rmdir_all(dir);
}

static void test_learner_semantics(void **st) {
    (void)st;
    for (int kind = 0; kind < 2; kind++) {
        fx_t f;
        fx_new(&f, kind, 0, 7 * DAY, NULL);
        char id[32];
        for (int i = 0; i < 100; i++) {
            snprintf(id, sizeof(id), "tx-%d", i);
            fx_score(&f, id, i % 2 ? "card-1" : "card-2", T0 + i * 60000LL,
                     (float)(i % 5));
        }
        /* a positive before maturity: learned at once */
        rs_learner_res_t r = fx_label(&f, "tx-10", 1, T0 + DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_LEARNED);
        assert_int_equal(r.y, 1);
        assert_true(r.delay_ms > 0);
        /* an explicit negative: learned at once, never again at maturity */
        r = fx_label(&f, "tx-11", 0, T0 + DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_LEARNED);
        /* a second label: ignored */
        r = fx_label(&f, "tx-10", 0, T0 + 2 * DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_REPEAT);
        /* never scored */
        r = fx_label(&f, "tx-nope", 1, T0 + DAY, RS_ERR_NOTFOUND);
        assert_int_equal(r.outcome, RS_LEARNER_UNKNOWN);
        /* maturity: the other 98 become negatives once 7 d have passed */
        assert_int_equal(fx_advance(&f, T0 + 6 * DAY), 0);
        assert_int_equal(fx_advance(&f, T0 + 8 * DAY), 98);
        assert_int_equal(fx_advance(&f, T0 + 9 * DAY), 0);
        /* a positive after its maturity negative: corrected */
        r = fx_label(&f, "tx-50", 1, T0 + 20 * DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_CORRECTED);
        /* a negative after maturity: nothing to learn */
        r = fx_label(&f, "tx-51", 0, T0 + 20 * DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_CONFIRMED);
        rs_model_stats_t ms;
        rs_model_stats(f.m, &ms);
        assert_int_equal(ms.positives, 2);
        assert_int_equal(ms.corrections, 1);
        assert_int_equal(ms.horizon_negatives, 98);
        assert_int_equal(ms.negatives, 99);
        assert_int_equal(ms.updates, 101);
        rs_learner_stats_t ls;
        rs_learner_stats(f.l, &ls);
        assert_int_equal(ls.unknown, 1);
        assert_int_equal(ls.repeats, 1);
        assert_int_equal(ls.matured, 98);
        assert_int_equal(ls.corrections, 1);
        assert_int_equal(ls.confirmed, 1);
        fx_free(&f);
    }
}

/* Failure-horizon labels (issue 15): machines m1, m2, m3 read hourly for
 * 10 days.  m1 fails at day 4 (horizon 1 d), is repaired and runs on; m2
 * fails at day 9, after its early readings matured as negatives; m3 never
 * fails.  Which records become positives, negatives, corrections. */
static void test_failure_horizon(void **st) {
    (void)st;
    for (int kind = 0; kind < 2; kind++) {
        fx_t f;
        fx_new(&f, kind, 0, RS_MODEL_HORIZON_AUTO, NULL);
        const int64_t H = DAY;
        rs_learner_set_failure_horizon(f.l, H);
        /* auto maturity horizon: 1.25 x (H + report delay 0) */
        assert_int_equal(rs_learner_horizon(f.l), (int64_t)(1.25 * DAY));
        const char *ms[3] = {"m1", "m2", "m3"};
        char id[32];
        /* days 0..4: m1 fails at T0 + 4 d (its reading at 4 d is the last) */
        for (int hr = 0; hr <= 4 * 24; hr++)
            for (int m = 0; m < 3; m++) {
                snprintf(id, sizeof(id), "%s-%d", ms[m], hr);
                fx_score(&f, id, ms[m], T0 + hr * 3600000LL + m, 0.1f * m);
            }
        const int64_t tf1 = T0 + 4 * DAY;
        /* matured so far: readings older than 4 d - 1.25 d (m1's included) */
        int nmat = fx_advance(&f, tf1);
        assert_true(nmat > 0);
        rs_learner_failure_t r;
        assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"), tf1,
                                            tf1, -1, &r), RS_OK);
        /* [4d - 1d, 4d]: 25 hourly readings; none matured yet (1.25 d) */
        assert_int_equal(r.positives, 25);
        assert_int_equal(r.corrected, 0);
        /* m1's pending readings before 3 d: those in (4d - 1.25 d, 3 d) */
        assert_int_equal(r.negatives, 6);
        assert_int_equal(r.repeats, 0);
        /* a second report of the same failure changes nothing */
        assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"), tf1,
                                            tf1, -1, &r), RS_OK);
        assert_int_equal(r.positives + r.corrected + r.negatives, 0);
        assert_int_equal(r.repeats, 31);
        /* days 4..10: m1 runs on (a new life), m2 degrades, m3 runs */
        for (int hr = 4 * 24 + 1; hr <= 10 * 24; hr++)
            for (int m = 0; m < 3; m++) {
                snprintf(id, sizeof(id), "%s-%d", ms[m], hr);
                fx_score(&f, id, ms[m], T0 + hr * 3600000LL + m, 0.1f * m);
            }
        /* the failure report of m2 at 9 d comes 12 h late, at 9.5 d: the
         * maturity cursor has passed 9.5 d - 1.25 d = 8.25 d, so m2's
         * readings in [8 d, 8.25 d) are maturity negatives -> corrected */
        const int64_t tf2 = T0 + 9 * DAY;
        fx_advance(&f, tf2 + DAY / 2);
        assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m2"), tf2,
                                            tf2 + DAY / 2, -1, &r), RS_OK);
        assert_int_equal(r.corrected, 6);     /* 8 d .. 8 d + 5 h         */
        /* 8.25 d .. 9 d - 1 h (m2 reads 1 ms after the hour: its 9 d
         * reading is after the failure) */
        assert_int_equal(r.positives, 18);
        assert_int_equal(r.negatives, 0);     /* older ones had matured   */
        /* m1's new life is untouched by its old failure; m3 never fails:
         * everything of theirs matures as negatives */
        assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("nobody"),
                                            tf2, tf2, -1, &r),
                         RS_ERR_NOTFOUND);
        /* the observed report delay (12 h) now lengthens the maturity
         * horizon: 1.25 x (1 d + p99 of {0, 12 h}) */
        assert_true(rs_learner_horizon(f.l) >= (int64_t)(1.25 * (DAY + DAY / 2)) - 60000);
        fx_advance(&f, T0 + 40 * DAY);
        rs_learner_stats_t ls;
        rs_learner_stats(f.l, &ls);
        assert_int_equal(ls.failures, 4);   /* the repeat and the unknown too */
        assert_int_equal(ls.positives, 25 + 6 + 18);
        assert_int_equal(ls.corrections, 6);
        /* every record learned exactly once (corrections are a second,
         * corrective step): 3 machines x 241 readings */
        assert_int_equal(ls.matured + ls.negatives + ls.positives - ls.corrections,
                         3 * 241);
        rs_model_stats_t mst;
        rs_model_stats(f.m, &mst);
        assert_int_equal(mst.positives, 49);
        assert_int_equal(mst.corrections, 6);
        fx_free(&f);
    }
}

/* Rehearsal of the first failures (rs_learner_set_rehearsal): three
 * machines read hourly, m1 fails at day 4, the others run on to day 10 and
 * mature, with model.replay 1.  With rehearsal (n0 = 4) some replay steps
 * draw m1's positives -- about q = n0 / (n + n0) / (1 + pos_weight) of
 * those after the failure (n = 1) --, the same calls give the same steps
 * and weights, and the model scores a probe higher than without (more
 * positive steps); without it (the default) no step is a rehearsal.  A
 * repeated report does not count as a second failure. */
static void reh_run(int n0, rs_learner_stats_t *ls, float *probe,
                    uint64_t *replays_after) {
    fx_t f;
    fx_new(&f, 0, 0, RS_MODEL_HORIZON_AUTO, NULL);
    rs_learner_destroy(f.l);
    f.conf.replay = 1;
    f.l = rs_learner_new(f.m, &f.conf);
    assert_int_equal(rs_learner_attach(f.l, f.lg), RS_OK);
    rs_learner_set_failure_horizon(f.l, DAY);
    rs_learner_set_rehearsal(f.l, n0);
    const char *ms[3] = {"m1", "m2", "m3"};
    char id[32];
    for (int hr = 0; hr <= 10 * 24; hr++) {
        for (int m = 0; m < 3; m++) {
            if (m == 0 && hr > 4 * 24) continue; /* m1 is down */
            snprintf(id, sizeof(id), "%s-%d", ms[m], hr);
            fx_score(&f, id, ms[m], T0 + hr * 3600000LL + m,
                     m == 0 && hr > 3 * 24 ? 1.0f : 0.1f * (float)m);
        }
        fx_advance(&f, T0 + hr * 3600000LL);
        if (hr == 4 * 24) {
            rs_learner_failure_t r;
            rs_learner_stats_t before;
            for (int k = 0; k < 2; k++) /* reported twice */
                assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"),
                                                    T0 + 4 * DAY, T0 + 4 * DAY,
                                                    -1, &r), RS_OK);
            rs_learner_stats(f.l, &before);
            *replays_after = before.replays;
        }
    }
    fx_advance(&f, T0 + 30 * DAY);
    rs_learner_stats(f.l, ls);
    *replays_after = ls->replays - *replays_after;
    *probe = fx_score(&f, "probe", "m9", T0 + 31 * DAY, 1.0f);
    fx_free(&f);
}

static void test_rehearsal(void **st) {
    (void)st;
    rs_learner_stats_t a, b, c;
    float pa, pb, pc;
    uint64_t ra, rb, rc;
    reh_run(4, &a, &pa, &ra);
    reh_run(4, &c, &pc, &rc);
    reh_run(0, &b, &pb, &rb);
    printf("rehearsal: %llu of %llu replay steps after the failure rehearsed "
           "m1's positives (q = %.4f); probe %.4f with, %.4f without\n",
           (unsigned long long)a.rehearsals, (unsigned long long)ra,
           4.0 / 5.0 / 11.0, pa, pb);
    assert_int_equal(b.rehearsals, 0);
    assert_true(a.rehearsals > 0);
    /* n = 1 (the repeat does not count), pos_weight 10: q = 0.8 / 11 */
    double q = 4.0 / 5.0 / 11.0;
    assert_true(a.rehearsals >= (uint64_t)(0.5 * q * (double)ra));
    assert_true(a.rehearsals <= (uint64_t)(2.0 * q * (double)ra) + 1);
    /* the same positives and negatives are learned either way */
    assert_int_equal(a.positives, b.positives);
    assert_int_equal(a.matured, b.matured);
    assert_int_equal(a.negatives, b.negatives);
    /* deterministic */
    assert_int_equal(a.rehearsals, c.rehearsals);
    assert_int_equal(a.replays, c.replays);
    assert_true(pa == pc);
    assert_true(pa > pb);
}

/* The rehearsal state for the service's checkpoint
 * (rs_learner_rehearsal_save/load): m1 fails at day 4 (25 hourly readings
 * in [T - 1 d, T] kept, n = 1); the state loaded into a NEW learner (as
 * after a restart) gives the same n and positions, and its replay steps
 * rehearse them (m2's later readings maturing) where a new learner
 * without the state rehearses none; positions at or past a log's restored
 * end, or in a partition without a log, are dropped (n kept); damaged
 * states are refused with the state unchanged; a learner without
 * rehearsal refuses any. */
static rs_learner_t *reh_learner(fx_t *f, int n0) {
    rs_learner_t *l = rs_learner_new(f->m, &f->conf);
    assert_int_equal(rs_learner_attach(l, f->lg), RS_OK);
    rs_learner_set_failure_horizon(l, DAY);
    rs_learner_set_rehearsal(l, n0);
    return l;
}

static void test_rehearsal_state(void **st) {
    (void)st;
    for (int restored = 0; restored < 2; restored++) {
        fx_t f;
        fx_new(&f, 0, 0, RS_MODEL_HORIZON_AUTO, NULL);
        rs_learner_destroy(f.l);
        f.conf.replay = 1;
        f.l = reh_learner(&f, 4);
        char id[32];
        for (int hr = 0; hr <= 6 * 24; hr++) {
            for (int m = 0; m < 2; m++) {
                if (m == 0 && hr > 4 * 24) continue; /* m1 is down */
                snprintf(id, sizeof(id), "m%d-%d", m + 1, hr);
                fx_score(&f, id, m ? "m2" : "m1", T0 + hr * 3600000LL + m,
                         m == 0 && hr > 3 * 24 ? 1.0f : 0.1f);
            }
            if (hr <= 4 * 24) fx_advance(&f, T0 + hr * 3600000LL);
        }
        rs_learner_failure_t r;
        assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"),
                                            T0 + 4 * DAY, T0 + 4 * DAY, -1,
                                            &r), RS_OK);
        assert_int_equal(r.positives + r.corrected, 25);
        rs_learner_stats_t a;
        rs_learner_stats(f.l, &a);
        assert_int_equal(a.reh_failures, 1);
        assert_int_equal(a.reh_kept, 25);
        size_t len = rs_learner_rehearsal_size(f.l);
        assert_int_equal(len, 24 + 25 * 8);
        uint8_t *buf = malloc(len + 8);
        rs_learner_rehearsal_save(f.l, buf);
        /* "restart": a new learner on the same model and log */
        rs_learner_destroy(f.l);
        f.l = reh_learner(&f, 4);
        rs_learner_stats_t b;
        char e[256];
        int64_t end = (int64_t)rs_learnlog_end(f.lg);
        if (restored) {
            /* damaged states: refused, nothing changed */
            uint8_t *bad = malloc(len + 8);
            memcpy(bad, buf, len);
            bad[0] ^= 1;
            assert_int_equal(rs_learner_rehearsal_load(f.l, bad, len, &end, 1,
                                                       e, sizeof(e)),
                             RS_ERR_CORRUPT);
            assert_int_equal(rs_learner_rehearsal_load(f.l, buf, len - 8, &end,
                                                       1, e, sizeof(e)),
                             RS_ERR_CORRUPT);
            memcpy(bad, buf, len);
            memset(bad + len, 0, 8);
            assert_int_equal(rs_learner_rehearsal_load(f.l, bad, len + 8, &end,
                                                       1, e, sizeof(e)),
                             RS_ERR_CORRUPT);
            assert_int_equal(rs_learner_rehearsal_load(f.l, NULL, 0, &end, 1, e,
                                                       sizeof(e)),
                             RS_ERR_CORRUPT);
            free(bad);
            rs_learner_stats(f.l, &b);
            assert_int_equal(b.reh_failures, 0);
            assert_int_equal(b.reh_kept, 0);
            /* positions past a log's end, or without a log, dropped */
            int64_t none = -1, cut = end;
            uint64_t below = 0;
            for (int i = 0; i < 25; i++) {
                uint64_t lp;
                memcpy(&lp, buf + 24 + i * 8, 8);
                if (i == 12) cut = (int64_t)RS_LPOS_POS(lp);
            }
            for (int i = 0; i < 25; i++) {
                uint64_t lp;
                memcpy(&lp, buf + 24 + i * 8, 8);
                below += RS_LPOS_POS(lp) < (uint64_t)cut;
            }
            assert_int_equal(rs_learner_rehearsal_load(f.l, buf, len, &none, 1,
                                                       e, sizeof(e)), RS_OK);
            rs_learner_stats(f.l, &b);
            assert_int_equal(b.reh_failures, 1);
            assert_int_equal(b.reh_kept, 0);
            assert_int_equal(rs_learner_rehearsal_load(f.l, buf, len, &cut, 1,
                                                       e, sizeof(e)), RS_OK);
            rs_learner_stats(f.l, &b);
            assert_true(below > 0 && below < 25);
            assert_int_equal(b.reh_kept, below);
            /* the whole state */
            assert_int_equal(rs_learner_rehearsal_load(f.l, buf, len, &end, 1,
                                                       e, sizeof(e)), RS_OK);
            rs_learner_stats(f.l, &b);
            assert_int_equal(b.reh_failures, 1);
            assert_int_equal(b.reh_kept, 25);
            assert_int_equal(rs_learner_rehearsal_size(f.l), len);
            uint8_t *again = malloc(len);
            rs_learner_rehearsal_save(f.l, again);
            assert_memory_equal(again, buf, len);
            free(again);
            /* without rehearsal: refused */
            rs_learner_t *off = reh_learner(&f, 0);
            assert_int_equal(rs_learner_rehearsal_size(off), 0);
            assert_int_equal(rs_learner_rehearsal_load(off, buf, len, &end, 1,
                                                       e, sizeof(e)),
                             RS_ERR_STATE);
            rs_learner_detach(off, 0);
            rs_learner_destroy(off);
        }
        /* m2's readings after day 4 mature: replay steps */
        fx_advance(&f, T0 + 30 * DAY);
        rs_learner_stats(f.l, &b);
        printf("rehearsal state %s: %llu of %llu replay steps rehearsed\n",
               restored ? "restored" : "not restored",
               (unsigned long long)b.rehearsals,
               (unsigned long long)b.replays);
        assert_true(b.replays > 20);
        if (restored)
            assert_true(b.rehearsals > 0);
        else
            assert_int_equal(b.rehearsals, 0);
        free(buf);
        fx_free(&f);
    }
}

/* A repair ends a life without a failure: its pending readings are
 * negatives now, and a failure of the next life within the horizon does
 * not reach back before the repair. */
static void test_repair_life(void **st) {
    (void)st;
    fx_t f;
    fx_new(&f, RS_MODEL_LR, 0, RS_MODEL_HORIZON_AUTO, NULL);
    const int64_t H = DAY;
    rs_learner_set_failure_horizon(f.l, H);
    char id[32];
    /* hourly readings of m1 over 0 .. 36 h; repaired right after 24 h */
    for (int hr = 0; hr <= 24; hr++) {
        snprintf(id, sizeof(id), "m1-%d", hr);
        fx_score(&f, id, "m1", T0 + hr * 3600000LL, 0.2f);
    }
    rs_learner_failure_t r;
    assert_int_equal(rs_learner_repair(f.l, 0, rs_hash_str("m1"),
                                       T0 + DAY, -1, &r), RS_OK);
    assert_int_equal(r.negatives, 25);
    assert_int_equal(r.positives + r.corrected + r.repeats, 0);
    for (int hr = 25; hr <= 36; hr++) {
        snprintf(id, sizeof(id), "m1-%d", hr);
        fx_score(&f, id, "m1", T0 + hr * 3600000LL, 0.2f);
    }
    /* fails at 36 h: [12 h, 36 h] would be positives, but only the new
     * life's (25 .. 36 h) are; the old life's are left as they were */
    assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"),
                                        T0 + 36 * 3600000LL,
                                        T0 + 36 * 3600000LL, -1, &r), RS_OK);
    assert_int_equal(r.positives, 12);
    assert_int_equal(r.negatives + r.corrected, 0);
    assert_int_equal(r.repeats, 25);
    assert_int_equal(rs_learner_repair(f.l, 0, rs_hash_str("nobody"),
                                       T0 + DAY, -1, &r), RS_ERR_NOTFOUND);
    rs_learner_stats_t ls;
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.repairs, 2);
    assert_int_equal(ls.positives, 12);
    assert_int_equal(ls.negatives, 25);
    fx_free(&f);
}

/* Remaining useful life from the same resolution (cap = 2 horizons):
 * a failure gives every reading of its machine up to the cap before it
 * (and beyond: the cap) its remaining life; a machine that keeps running
 * gives the cap to readings it ran the cap past; a repair before the cap
 * censors its life's readings for good; nothing is learned twice. */
static void test_rul_censoring(void **st) {
    (void)st;
    fx_t f;
    fx_new(&f, RS_MODEL_LR, 0, RS_MODEL_HORIZON_AUTO, NULL);
    const int64_t H = DAY, HR = 3600000LL;
    rs_learner_set_failure_horizon(f.l, H);
    rs_rul_t *rul = rs_rul_new(4, 2 * H);
    rs_learner_set_rul(f.l, rul);
    char id[32];
    /* m1 and m2 hourly over 0 .. 72 h, m3 over 0 .. 36 h */
    for (int hr = 0; hr <= 72; hr++)
        for (int m = 1; m <= 3; m++) {
            if (m == 3 && hr > 36) continue;
            snprintf(id, sizeof(id), "m%d-%d", m, hr);
            char ent[8];
            snprintf(ent, sizeof(ent), "m%d", m);
            fx_score(&f, id, ent, T0 + hr * HR + m, 0.1f * (float)m);
        }
    /* m1 fails at its 72 h reading: all of its 73 readings learn their
     * remaining life (min(72 h - t, 48 h)) */
    rs_learner_failure_t r;
    assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"),
                                        T0 + 72 * HR + 1, T0 + 72 * HR + 1,
                                        -1, &r), RS_OK);
    rs_learner_stats_t ls;
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.rul_learned, 73);
    assert_int_equal(ls.rul_censored, 0);
    /* m3 is repaired at 36 h: none of its readings is 48 h old: censored */
    assert_int_equal(rs_learner_repair(f.l, 0, rs_hash_str("m3"),
                                       T0 + 36 * HR + 3, -1, &r), RS_OK);
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.rul_learned, 73);
    assert_int_equal(ls.rul_censored, 37);
    /* at 72 h, m2's readings older than 72 h - 48 h (report delay 0) are
     * known to have at least the cap left: 0 .. 24 h (m2 reads 2 ms
     * after the hour, the watermark is 3 ms after) */
    fx_advance(&f, T0 + 72 * HR + 3);
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.rul_learned, 73 + 25);
    /* readings within the cap of the watermark wait; later they come */
    fx_advance(&f, T0 + 96 * HR + 3);
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.rul_learned, 73 + 49);
    assert_int_equal(rs_rul_updates(rul), 73 + 49);
    /* a second report of m1's failure learns nothing again */
    assert_int_equal(rs_learner_failure(f.l, 0, rs_hash_str("m1"),
                                        T0 + 72 * HR + 1, T0 + 72 * HR + 1,
                                        -1, &r), RS_OK);
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.rul_learned, 73 + 49);
    fx_free(&f);
    rs_rul_destroy(rul);
}

/* The cases: a label 60 days late is learned (auto horizon with
 * the declared delay); with a fixed 7-day horizon it comes after the
 * maturity negative and corrects it. */
static void test_label_60_days_late(void **st) {
    (void)st;
    for (int fixed = 0; fixed < 2; fixed++) {
        fx_t f;
        fx_new(&f, RS_MODEL_LR, fixed ? 0 : 60 * DAY,
               fixed ? 7 * DAY : RS_MODEL_HORIZON_AUTO, NULL);
        assert_int_equal(rs_learner_horizon(f.l),
                         fixed ? 7 * DAY : 75 * DAY);
        fx_score(&f, "late", "card-9", T0, 3);
        /* 61 days of other events go by */
        char id[32];
        for (int d = 1; d <= 61; d++) {
            snprintf(id, sizeof(id), "d-%d", d);
            fx_score(&f, id, "card-8", T0 + d * DAY, 1);
            fx_advance(&f, T0 + d * DAY);
        }
        rs_learner_res_t r = fx_label(&f, "late", 1, T0 + 60 * DAY, RS_OK);
        assert_int_equal(r.outcome,
                         fixed ? RS_LEARNER_CORRECTED : RS_LEARNER_LEARNED);
        assert_int_equal(r.delay_ms, 60 * DAY);
        rs_model_stats_t ms;
        rs_model_stats(f.m, &ms);
        assert_int_equal(ms.positives, 1);
        assert_int_equal(ms.corrections, fixed ? 1 : 0);
        fx_free(&f);
    }
}

/* Auto horizon: label_horizon_max until known, then 1.25 x the p99 of
 * the positives' delays. */
static void test_auto_horizon(void **st) {
    (void)st;
    fx_t f;
    fx_new(&f, RS_MODEL_LR, 0, RS_MODEL_HORIZON_AUTO, NULL);
    assert_int_equal(rs_learner_horizon(f.l), f.conf.label_horizon_max);
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "p-%d", i);
        fx_score(&f, id, "card-1", T0 + i * 1000LL, 1);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "p-%d", i);
        fx_label(&f, id, 1, T0 + i * 1000LL + 10 * DAY, RS_OK);
    }
    int64_t h = rs_learner_horizon(f.l);
    assert_true(h >= (int64_t)(1.25 * 10 * DAY) - DAY / 10);
    assert_true(h <= (int64_t)(1.25 * 10 * DAY) + DAY / 5);
    rs_learner_stats_t ls;
    rs_learner_stats(f.l, &ls);
    assert_int_equal(ls.delays, 40);
    assert_true(ls.delay_p50_ms >= 10 * DAY - DAY / 10);
    /* the observations survive in a file */
    char *dir = tmpdir();
    char path[600], e[600];
    snprintf(path, sizeof(path), "%s/label-delays", dir);
    assert_int_equal(rs_learner_delays_save(f.l, path, e, sizeof(e)), RS_OK);
    rs_hist_t a, p;
    assert_int_equal(rs_learner_delays_load(path, &a, &p, e, sizeof(e)), RS_OK);
    assert_int_equal(a.total, 40);
    assert_int_equal(p.total, 40);
    assert_int_equal(rs_learner_horizon_for(&f.conf, &a, &p), h);
    /* a damaged file is named, a missing one is nothing observed */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
    assert_int_equal(rs_learner_delays_load(path, &a, &p, e, sizeof(e)),
                     RS_ERR_CORRUPT);
    unlink(path);
    assert_int_equal(rs_learner_delays_load(path, &a, &p, e, sizeof(e)), RS_OK);
    assert_int_equal(a.total, 0);
    rmdir_all(dir);
    fx_free(&f);
}

/* Configurations that would learn every fraud as genuine: refused. */
static void test_refused_configs(void **st) {
    (void)st;
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    char e[512];
    assert_int_equal(c.label_horizon, RS_MODEL_HORIZON_AUTO);
    assert_int_equal(rs_learner_check_conf(&c, NULL, e, sizeof(e)), RS_OK);
    c.label_delay = 7 * DAY;
    c.label_horizon = 4 * DAY;
    assert_int_equal(rs_learner_check_conf(&c, NULL, e, sizeof(e)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(e, "model.label_horizon 4d"));
    assert_non_null(strstr(e, "label delay 1w"));
    c.label_horizon = 8 * DAY;
    assert_int_equal(rs_learner_check_conf(&c, NULL, e, sizeof(e)), RS_OK);
    /* observed: the median delay of positives */
    c.label_delay = 0;
    c.label_horizon = 2 * DAY;
    rs_hist_t pos;
    rs_hist_init(&pos);
    for (int i = 0; i < 50; i++) rs_hist_record(&pos, 5 * 86400);
    assert_int_equal(rs_learner_check_conf(&c, &pos, e, sizeof(e)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(e, "observed"));
    /* auto with a declared delay above its bound */
    c.label_horizon = RS_MODEL_HORIZON_AUTO;
    c.label_delay = 200 * DAY;
    assert_int_equal(rs_learner_check_conf(&c, &pos, e, sizeof(e)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(e, "label_horizon_max"));
}

/* A restart in the middle loses no learning record: the log on disk is
 * reopened by a new learner and every label still finds its event. */
static void test_restart_keeps_records(void **st) {
    (void)st;
    char *dir = tmpdir();
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/p0", dir);
    fx_t f;
    fx_new(&f, RS_MODEL_SEQ, 3 * DAY, RS_MODEL_HORIZON_AUTO, sub);
    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "r-%d", i);
        fx_score(&f, id, i % 3 ? "card-a" : "card-b", T0 + i * 60000LL,
                 (float)(i % 7));
    }
    /* no sync, no graceful close of the learner: as after kill -9 the
     * mapping's pages are the file */
    rs_learner_destroy(f.l);
    rs_learnlog_close(f.lg);
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(f.m, &meta);
    char e[512];
    rs_err_t err;
    f.lg = rs_learnlog_open(sub, 0, &meta, 1 << 20, &err, e, sizeof(e));
    assert_non_null(f.lg);
    assert_int_equal(rs_learnlog_end(f.lg), 300);
    f.l = rs_learner_new(f.m, &f.conf);
    rs_learner_attach(f.l, f.lg);
    for (int i = 0; i < 300; i += 7) {
        snprintf(id, sizeof(id), "r-%d", i);
        rs_learner_res_t r = fx_label(&f, id, i % 2, T0 + DAY, RS_OK);
        assert_int_equal(r.outcome, RS_LEARNER_LEARNED);
    }
    fx_free(&f);
    rmdir_all(dir);
}

/* Sequence model: a record's history is rebuilt from the entity's earlier
 * records, oldest first, as long as the scorer attended over. */
static void test_seq_history_chain(void **st) {
    (void)st;
    fx_t f;
    fx_new(&f, RS_MODEL_SEQ, DAY, RS_MODEL_HORIZON_AUTO, NULL);
    char id[32];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "h-%d", i);
        fx_score(&f, id, "card-h", T0 + i * 1000LL, (float)i);
        fx_score(&f, "x-other", "card-o", T0 + i * 1000LL, 1); /* noise */
    }
    const void *rec, *hist[16];
    int nh;
    assert_int_equal(rs_learner_record(f.l, 0, rs_hash_str("h-9"), &rec, hist,
                                       16, &nh),
                     RS_OK);
    const rs_lrec_hdr_t *h = rec;
    assert_int_equal(h->hist, 4); /* seq.history */
    assert_int_equal(nh, 4);
    for (int j = 0; j < nh; j++) {
        const rs_lrec_hdr_t *hj = hist[j];
        assert_int_equal(hj->entity, h->entity);
        assert_int_equal(hj->id, rs_hash_str((char[]){'h', '-',
                                                      (char)('5' + j), 0}));
    }
    /* learning from it works and touches the model */
    rs_learner_res_t r = fx_label(&f, "h-9", 1, T0 + DAY, RS_OK);
    assert_int_equal(r.outcome, RS_LEARNER_LEARNED);
    /* a history record of another entity is refused by the model */
    const void *bad[1] = {NULL};
    assert_int_equal(rs_learner_record(f.l, 0, rs_hash_str("x-other"), &bad[0],
                                       hist, 16, &nh),
                     RS_OK);
    assert_int_equal(rs_model_learn_lrec(f.m, rec, bad, 1, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_memory),
        cmocka_unit_test(test_log_segments_restart),
        cmocka_unit_test(test_log_torn_tail),
        cmocka_unit_test(test_log_rewind_and_meta),
        cmocka_unit_test(test_log_index_ram),
        cmocka_unit_test(test_log_files_grow),
        cmocka_unit_test(test_log_spare_roll),
        cmocka_unit_test(test_log_spare_crash),
        cmocka_unit_test(test_log_spare_threads),
        cmocka_unit_test(test_log_first_segment),
        cmocka_unit_test(test_log_first_crash),
        cmocka_unit_test(test_log_first_threads),
        cmocka_unit_test(test_learner_semantics),
        cmocka_unit_test(test_learner_prepares_spare),
        cmocka_unit_test(test_failure_horizon),
        cmocka_unit_test(test_rehearsal),
        cmocka_unit_test(test_rehearsal_state),
        cmocka_unit_test(test_repair_life),
        cmocka_unit_test(test_rul_censoring),
        cmocka_unit_test(test_label_60_days_late),
        cmocka_unit_test(test_auto_horizon),
        cmocka_unit_test(test_refused_configs),
        cmocka_unit_test(test_restart_keeps_records),
        cmocka_unit_test(test_seq_history_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
