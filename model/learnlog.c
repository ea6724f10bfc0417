/* learnlog.c -- the learning log (see learnlog.h for the design note).
 *
 * File formats (little-endian; one page of header, then the body):
 *   .log  "RSLLOG1\0" | u32 version 1 | u32 rec_size | u32 kind | u32 arch
 *         | u32 names_hash | u32 dim | i32 partition | u32 header checksum
 *         | u64 first position | u64 capacity (records)  -- then
 *         capacity records of rec_size bytes
 *   .idx  "RSLIDX1\0" | u64 first | u64 slots | u64 indexed | i64 min_t |
 *         i64 max_t | u64 cursor  -- then slots of {u64 key, u64 record+1}
 *         (open addressing, linear probing; key = event id hash, 0 -> 1)
 * The .idx is derived: it is rebuilt from the .log whenever it does not
 * match.  `slots` and `indexed` describe the table the FILE holds (0 slots:
 * none written yet, the area is zeros); min_t, max_t and cursor are kept
 * up to date in the mapping.
 *
 * Where the index lives.  A segment's hash table is sized for its whole
 * capacity (a 256 MiB segment: 2 M slots, 32 MiB), and event ids hash to
 * random slots: filled in place, nearly every insert of a young segment
 * touched a fresh page of the mapped file (a page fault, the page zeroed
 * and later written back: measured as ~40 % of the trainer thread in the
 * end-to-end bench).  So the segment being indexed keeps its table in RAM,
 * starting small and doubling at 70 % load (pages touched grow with the
 * records, not with the capacity), up to an eighth of the full size; then
 * (or when the segment is fully indexed, SEALED) it is hashed into the
 * file's full-size table, which is the index from then on and is kept
 * current in place, as before: by then its keys would touch nearly every
 * page of it anyway, and RAM stays bounded.  A table still in RAM goes to
 * the file as it is at close (the next open loads it instead of re-reading
 * the records).  After a crash the file holds the table of the last close,
 * or the one kept in place: the records after its `indexed` are checked
 * and indexed again at open, as before; a rewind zeroes `indexed` (the
 * table may name records that are gone: it is cleared before reuse).
 *
 * Files grow.  Both files are mapped at their full size from the start,
 * but the .log is allocated on disk (posix_fallocate, so a full disk is an
 * error of the append, never a SIGBUS) in steps of RS_LL_GROW ahead of the
 * writer, and the .idx holds its header page only until a table is written
 * to it (at close, or when the table moves to the file): a fresh state
 * directory takes what its records need, not segment_bytes per partition
 * (32 partitions x 256 MiB preallocated 9 GB before).  Nothing touches the
 * mapping past the file's size: the prefault stops at it, the records
 * checked at open end at it, a table is read only if the file holds it.
 *
 * New segments, off the writer (issue 12).  Creating a segment (two files
 * opened, preallocated, mapped, their header pages written) costs the
 * thread that does it a few ms of syscalls and page-cache work, and up to
 * tens of ms on a busy machine; the writer is the scoring thread.  So the
 * resolver (the trainer) creates the NEXT segment ahead, once the segment
 * being written is half full (rs_learnlog_prepare), and hands it over as
 * the SPARE through the lock; at the roll the writer takes it and only
 * renames its files into place.  If no spare is ready (no resolver, a
 * slow one, a full disk) the writer creates the segment itself, as
 * before: correctness never depends on the spare.
 * A segment's files exist under their names (which open lists) only from
 * the roll on: every segment, spare or not, is created under temporary
 * names (<first>.log.spare / .idx.spare, or .new when the writer makes
 * its own) with its headers written, and renamed .log first, then .idx,
 * at the roll.  So a crash at any point leaves the log readable as it
 * was: a spare created but never used, or a segment cut short in its
 * creation, is only temporary files (open deletes them); a crash between
 * the renames leaves a .log without its .idx (rebuilt at open, as a lost
 * index always was); after the renames the new segment is the empty last
 * one, behind a full one.  (Before, a process stopped inside the creation
 * left a .log with a zero header, which open refused as damaged.)
 *
 * The first segment too.  A new log (no segment on disk) opens with no
 * segment at all, and its first segment is begun like any other: the
 * writer's first append takes it ready-made if the resolver's first
 * rs_learnlog_prepare came before (it makes segment 0 at once, no half
 * full to wait for), else makes it itself.  The service opens the log of
 * a partition when the partition is assigned and hands it to the trainer
 * at once, so the trainer makes it while the consumer fetches; before,
 * the scoring thread made it at the partition's first event (32 per start
 * of the 32-partition bench).  Until the first append the log is empty
 * with end 0 (nseg 0, wseg NULL): the resolver's calls see nothing, a
 * rewind can only be to 0, and a crash leaves at most temporary files,
 * which open deletes: the log opens new again.
 */
#define _GNU_SOURCE
#include "model/learnlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_LL_PAGE 4096u
#define RS_LL_LOG_MAGIC "RSLLOG1"
#define RS_LL_IDX_MAGIC "RSLIDX1"
#define RS_LL_VERSION 1u

typedef struct rs_ll_loghdr_s {
    char magic[8];
    uint32_t version, rec_size, kind, arch, names_hash, dim;
    int32_t partition;
    uint32_t sum;         /* rs_checksum32 of the bytes before it        */
    uint64_t first, cap;
} rs_ll_loghdr_t;

typedef struct rs_ll_idxhdr_s {
    char magic[8];
    uint64_t first, slots, indexed;
    int64_t min_t, max_t;
    uint64_t cursor;      /* maturity cursor when it was last here       */
} rs_ll_idxhdr_t;

typedef struct rs_ll_slot_s {
    uint64_t key;         /* 0 = empty                                   */
    uint64_t rec;         /* record index in the segment + 1             */
} rs_ll_slot_t;

typedef struct rs_lseg_s {
    uint64_t first, cap;
    uint8_t *log;         /* header page + records                       */
    size_t log_len;       /* mapped: the segment's full size              */
    size_t log_file;      /* the file's size (grows; <= log_len)          */
    uint8_t *idx;         /* header page + slots                         */
    size_t idx_len;       /* mapped: header page + the full table         */
    size_t idx_file;      /* the file's size (grows; <= idx_len)          */
    uint64_t mask;        /* slots - 1 of the file's full-size table      */
    /* resolver side: the index of a segment not yet sealed, in RAM
     * (NULL once sealed: the file's table is the index) */
    rs_ll_slot_t *ram;    /* [rmask + 1]                                 */
    uint64_t rmask, rkeys;/* slots - 1, keys held                        */
    uint64_t nidx;        /* records indexed (RAM or file)               */
    size_t pf_next;       /* writer: log bytes queued for prefault       */
    _Atomic int dirty;    /* written since the last sync                 */
    const char *tmp;      /* files still under temporary names (suffix:
                           * RS_LL_TMP_*), NULL once in place           */
} rs_lseg_t;

/* Suffixes of the temporary names of a segment not yet begun (New
 * segments, above): made ahead by the resolver, or by the writer itself. */
#define RS_LL_TMP_SPARE "spare" /* rs_learnlog_prepare                 */
#define RS_LL_TMP_NEW "new"     /* the writer's own                    */

struct rs_learnlog_s {
    rs_learnlog_meta_t meta;
    int32_t partition;
    char dir[512];        /* "" = in memory                              */
    int mem;
    uint64_t cap;         /* records per segment                         */
    uint64_t slots;       /* index slots per segment                     */

    pthread_mutex_t lock; /* segs[] (add: writer, remove: resolver), and
                           * spare (made: resolver, taken: writer)       */
    rs_lseg_t **segs;
    int nseg, segcap;
    rs_lseg_t *spare;     /* the next segment made ahead, or NULL        */
    int begin;            /* the writer is beginning a segment (from
                           * taking the spare to rs_ll_push): the
                           * resolver makes none meanwhile, for its
                           * files may be renamed right now           */

    /* writer */
    rs_lseg_t *wseg;
    _Atomic uint64_t end;
    _Atomic int dir_dirty;

    /* resolver */
    rs_lseg_t *rseg;      /* last segment looked up                      */
    uint64_t indexed;     /* records < indexed are in the index          */
    uint64_t cursor;      /* maturity cursor                             */
    uint64_t prep_at;     /* rs_learnlog_prepare: nothing to do before the
                           * end reaches this                            */

    _Atomic uint64_t st_rolls, st_spares, st_prepared, st_first_ready,
        st_made, st_dropped, st_prep_errors;
    _Atomic uint64_t st_finds, st_probes, st_deleted, st_first, st_cursor,
        st_indexed, st_segments, st_bytes;
    _Atomic int64_t st_oldest_t;
};

/* Process-wide totals (rs_learnlog_totals): the per-log counters summed
 * as they happen, so a closed log's count stays. */
static struct {
    _Atomic uint64_t begun_made, begun_ready, rolls, prepared, dropped,
        prep_errors, deleted, segments;
} rs_ll_tot;

#define RS_LL_TOT_ADD(f, n) \
    atomic_fetch_add_explicit(&rs_ll_tot.f, (uint64_t)(n), \
                              memory_order_relaxed)

/* ------------------------------------------------------------- records */

static inline rs_lrec_hdr_t *rs_ll_hdr(void *rec) { return rec; }

uint32_t rs_lrec_sum(const void *rec, size_t size) {
    /* sum and state read as 0: checksum the bytes around them */
    const uint8_t *p = rec;
    const size_t o_sum = offsetof(rs_lrec_hdr_t, sum),
                 o_state = offsetof(rs_lrec_hdr_t, state);
    uint32_t h = rs_checksum32(p, o_sum, 0x6c726563u);
    h = rs_checksum32(p + o_sum + 4, o_state - (o_sum + 4), h);
    h = rs_checksum32(p + o_state + 1, size - (o_state + 1), h);
    return h;
}

void rs_lrec_seal(void *rec, size_t size) {
    rs_lrec_hdr_t *h = rs_ll_hdr(rec);
    h->sum = 0;
    h->state = 0;
    h->sum = rs_lrec_sum(rec, size);
}

static int rs_ll_rec_ok(const rs_learnlog_t *lg, const void *rec) {
    const rs_lrec_hdr_t *h = rec;
    return h->id != 0 && h->sum == rs_lrec_sum(rec, lg->meta.rec_size);
}

uint64_t rs_learnlog_bytes_per_record(uint32_t rec_size) {
    /* the index at its load factor: slots >= 10/7 of the records, 16 B */
    return (uint64_t)rec_size + 16 * 10 / 7 + 1;
}

/* ------------------------------------------------------------ segments */

static inline rs_ll_idxhdr_t *rs_ll_ih(const rs_lseg_t *sg) {
    return (rs_ll_idxhdr_t *)(void *)sg->idx;
}

static inline rs_ll_slot_t *rs_ll_slots(const rs_lseg_t *sg) {
    return (rs_ll_slot_t *)(void *)(sg->idx + RS_LL_PAGE);
}

static inline uint8_t *rs_ll_at(const rs_learnlog_t *lg, const rs_lseg_t *sg,
                                uint64_t pos) {
    return sg->log + RS_LL_PAGE + (pos - sg->first) * lg->meta.rec_size;
}

static void rs_ll_path(const rs_learnlog_t *lg, uint64_t first,
                       const char *ext, char *buf, size_t size) {
    snprintf(buf, size, "%s/%020" PRIu64 ".%s", lg->dir, first, ext);
}

/* The name a file of segment `first` has now: its temporary one while
 * sg->tmp is set (tmp: that suffix; NULL: the final name). */
static void rs_ll_path_tmp(const rs_learnlog_t *lg, uint64_t first,
                           const char *ext, const char *tmp, char *buf,
                           size_t size) {
    if (!tmp) rs_ll_path(lg, first, ext, buf, size);
    else snprintf(buf, size, "%s/%020" PRIu64 ".%s.%s", lg->dir, first, ext,
                  tmp);
}

/* Prefault of the log ahead of the writer.  Each fresh page of a segment
 * costs a fault when the writer's memcpy first touches it (one every ~20
 * records; ~30 us each on a VM, where the hypervisor backs the page on
 * first use); the background prefault thread (common.h rs_prefault)
 * populates them ahead instead, RS_LL_PF_STEP at a time, keeping at least
 * RS_LL_PF_AHEAD queued past the end.  A new segment queues its first
 * step at once (at start: while the consumer joins its group). */
#define RS_LL_PF_STEP ((size_t)512 << 10)
#define RS_LL_PF_AHEAD ((size_t)256 << 10)

static void rs_ll_prefault(rs_lseg_t *sg, size_t upto) {
    while (sg->pf_next < sg->log_file && sg->pf_next < upto + RS_LL_PF_AHEAD) {
        size_t n = RS_MIN(RS_LL_PF_STEP, sg->log_file - sg->pf_next);
        rs_prefault(sg->log + sg->pf_next, n);
        sg->pf_next += n;
    }
}

static void rs_ll_unmap(const rs_learnlog_t *lg, rs_lseg_t *sg) {
    if (!sg) return;
    free(sg->ram);
    if (sg->log) rs_prefault_cancel(sg->log, sg->log_len);
    if (lg->mem) {
        free(sg->log);
        free(sg->idx);
    } else {
        if (sg->log) munmap(sg->log, sg->log_len);
        if (sg->idx) munmap(sg->idx, sg->idx_len);
    }
    free(sg);
}

/* Map one file: `len` bytes of mapping (at least the file's size).
 * create = 1: create it with `alloc` bytes allocated.  *out_file gets the
 * file's size. */
static rs_err_t rs_ll_map(const char *path, size_t alloc, size_t len,
                          int create, uint8_t **out, size_t *out_len,
                          size_t *out_file, char *errstr,
                          size_t errstr_size) {
    int fd = open(path, create ? O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC
                               : O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "learning log %s: %s",
                       path, strerror(errno));
    if (create) {
        int e = posix_fallocate(fd, 0, (off_t)alloc);
        if (e) {
            close(fd);
            unlink(path);
            return rs_errf(errstr, errstr_size, RS_ERR_IO,
                           "learning log %s: cannot allocate %zu bytes: %s",
                           path, alloc, strerror(e));
        }
        *out_file = alloc;
    } else {
        struct stat sb;
        if (fstat(fd, &sb) != 0 || sb.st_size < (off_t)RS_LL_PAGE) {
            close(fd);
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "learning log %s: truncated file", path);
        }
        *out_file = (size_t)sb.st_size;
    }
    if (len < *out_file) len = *out_file;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "learning log %s: mmap: %s", path, strerror(errno));
    /* No read-around on a fault.  A fault on a file mapping reads the
     * block device's read_ahead_kb around the page (8 MiB on this VM's
     * disk); on a preallocated (unwritten) file that is 8 MiB of fresh
     * page cache zeroed per fault, on the faulting thread: writing the two
     * header pages of a new segment cost the scoring thread ~16 MiB of
     * zeroing per partition (perf: 48 % of serve's samples in the first
     * seconds of the e2e bench with 32 partitions), most of it for pages
     * of the index that are never used.  Pages are touched where they are
     * needed (the writer's prefault step, the index's slots), one by one. */
    (void)madvise(p, len, MADV_RANDOM);
    *out = p;
    *out_len = len;
    return RS_OK;
}

/* Steps the .log file grows by, ahead of the writer. */
#define RS_LL_GROW ((size_t)4 << 20)

/* Grow the file of segment `first` (ext "log" or "idx") to at least
 * `want` bytes (the log's rounded up to RS_LL_GROW), at most `full`.
 * RS_OK, or RS_ERR_IO with errstr (the disk is full: *file unchanged). */
static rs_err_t rs_ll_grow(rs_learnlog_t *lg, uint64_t first,
                           const char *ext, size_t *file, size_t want,
                           size_t full, char *errstr, size_t errstr_size) {
    if (want <= *file) return RS_OK;
    if (lg->mem) return RS_OK; /* in memory: allocated whole */
    if (ext[0] == 'l') want = (want + RS_LL_GROW - 1) / RS_LL_GROW * RS_LL_GROW;
    if (want > full) want = full;
    char path[600];
    rs_ll_path(lg, first, ext, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int e = fd < 0 ? errno
                   : posix_fallocate(fd, (off_t)*file, (off_t)(want - *file));
    if (fd >= 0) close(fd);
    if (e)
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "learning log %s: cannot grow to %zu bytes: %s",
                       path, want, strerror(e));
    atomic_fetch_add(&lg->st_bytes, (uint64_t)(want - *file));
    *file = want;
    return RS_OK;
}

/* Records [.., pos] are within the .log file. */
static inline int rs_ll_rec_in(const rs_learnlog_t *lg, const rs_lseg_t *sg,
                               uint64_t pos) {
    return RS_LL_PAGE + (pos - sg->first + 1) * (uint64_t)lg->meta.rec_size <=
           sg->log_file;
}

#define RS_LL_RAM_MIN 1024u /* slots of a new RAM index (16 KiB)          */

/* Insert into a table of mask+1 slots; 0 if the key was there (a repeat:
 * the first record wins). */
static inline int rs_ll_put(rs_ll_slot_t *sl, uint64_t mask, uint64_t key,
                            uint64_t rec) {
    uint64_t i = key & mask;
    while (sl[i].key) {
        if (sl[i].key == key) return 0;
        i = (i + 1) & mask;
    }
    sl[i].key = key;
    sl[i].rec = rec;
    return 1;
}

/* A new, empty index in RAM (the file's table is left as it is: its
 * header says what it holds). */
static void rs_ll_idx_init(const rs_learnlog_t *lg, rs_lseg_t *sg) {
    rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
    free(sg->ram);
    uint64_t n = RS_MIN((uint64_t)RS_LL_RAM_MIN, sg->mask + 1);
    sg->ram = rs_calloc((size_t)n, sizeof(rs_ll_slot_t));
    sg->rmask = n - 1;
    sg->rkeys = 0;
    sg->nidx = 0;
    ih->min_t = INT64_MAX;
    ih->max_t = INT64_MIN;
    ih->cursor = sg->first;
    (void)lg;
}

/* A fresh segment's header: no table written yet. */
static void rs_ll_idx_hdr_new(rs_lseg_t *sg) {
    rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
    memcpy(ih->magic, RS_LL_IDX_MAGIC, 8);
    ih->first = sg->first;
    ih->slots = 0;
    ih->indexed = 0;
    ih->min_t = INT64_MAX;
    ih->max_t = INT64_MIN;
    ih->cursor = sg->first;
}

/* Re-hash the RAM table into one of `slots` slots. */
static void rs_ll_ram_resize(rs_lseg_t *sg, uint64_t slots) {
    rs_ll_slot_t *nt = rs_calloc((size_t)slots, sizeof(rs_ll_slot_t));
    for (uint64_t i = 0; i <= sg->rmask; i++)
        if (sg->ram[i].key)
            rs_ll_put(nt, slots - 1, sg->ram[i].key, sg->ram[i].rec);
    free(sg->ram);
    sg->ram = nt;
    sg->rmask = slots - 1;
}

/* Write the RAM table to the file.  full = 1 (the segment is fully
 * indexed, or its table outgrew rs_ll_ram_max): the file gets the
 * full-size table (entries hashed straight into it), which is the index
 * from then on, and RAM is freed; full = 0 (close): the table is copied as
 * it is, at its current size.  The part of an older, larger table the new
 * one does not cover is cleared.  The file grows to hold the table first;
 * if it cannot (disk full) nothing is written and 0 is returned (the
 * table stays in RAM), else 1. */
static int rs_ll_idx_write(rs_learnlog_t *lg, rs_lseg_t *sg, int full) {
    rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
    rs_ll_slot_t *fs = rs_ll_slots(sg);
    const uint64_t old = ih->slots <= sg->mask + 1 ? ih->slots : sg->mask + 1;
    {
        char e[256];
        size_t want = RS_LL_PAGE + (size_t)(full ? sg->mask + 1 : sg->rmask + 1) *
                                       sizeof(*fs);
        if (rs_ll_grow(lg, sg->first, "idx", &sg->idx_file, want, sg->idx_len,
                       e, sizeof(e)) != RS_OK) {
            rs_warn("learnlog", "index kept in RAM: %s", e);
            return 0;
        }
    }
    ih->indexed = 0; /* the table is not whole until the end */
    if (full) {
        if (old) memset(fs, 0, (size_t)old * sizeof(*fs));
        for (uint64_t i = 0; i <= sg->rmask; i++)
            if (sg->ram[i].key)
                rs_ll_put(fs, sg->mask, sg->ram[i].key, sg->ram[i].rec);
        ih->slots = sg->mask + 1;
        free(sg->ram);
        sg->ram = NULL;
    } else {
        const uint64_t n = sg->rmask + 1;
        memcpy(fs, sg->ram, (size_t)n * sizeof(*fs));
        if (old > n) memset(fs + n, 0, (size_t)(old - n) * sizeof(*fs));
        ih->slots = n;
    }
    ih->indexed = sg->nidx;
    return 1;
}

/* Slots the RAM table may grow to: an eighth of the full table.  Past it
 * the keys are spread enough that inserting into the file's table touches
 * (nearly) all of its pages anyway; the table moves there, so RAM stays
 * bounded (4 MiB per partition with 256 MiB segments). */
static uint64_t rs_ll_ram_max(const rs_lseg_t *sg) {
    uint64_t m = (sg->mask + 1) / 8;
    return m > RS_LL_RAM_MIN ? m : RS_LL_RAM_MIN;
}

static void rs_ll_idx_add(rs_learnlog_t *lg, rs_lseg_t *sg,
                          uint64_t pos) {
    const rs_lrec_hdr_t *h = (const rs_lrec_hdr_t *)rs_ll_at(lg, sg, pos);
    rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
    uint64_t key = h->id ? h->id : 1, rec = pos - sg->first + 1;
    /* at most 70 % full; the full size holds the capacity at that load */
    if (sg->ram && (sg->rkeys + 1) * 10 > (sg->rmask + 1) * 7) {
        if (sg->rmask < sg->mask && sg->rmask + 1 < rs_ll_ram_max(sg))
            rs_ll_ram_resize(sg, 2 * (sg->rmask + 1));
        else if (!rs_ll_idx_write(lg, sg, 1) && sg->rmask < sg->mask)
            rs_ll_ram_resize(sg, 2 * (sg->rmask + 1)); /* disk full: RAM */
    }
    if (sg->ram) {
        sg->rkeys += (uint64_t)rs_ll_put(sg->ram, sg->rmask, key, rec);
    } else {
        /* in the file's table, kept current there (as it is once sealed) */
        rs_ll_put(rs_ll_slots(sg), sg->mask, key, rec);
        ih->indexed = rec;
    }
    if (h->t < ih->min_t) ih->min_t = h->t;
    if (h->t > ih->max_t) ih->max_t = h->t;
    sg->nidx = rec;
    if (sg->nidx == sg->cap && sg->ram) rs_ll_idx_write(lg, sg, 1); /* sealed */
}

/* The index of an opened segment from its file: the file's table is used
 * in place if it is the full-size one (sealed, or moved there while the
 * segment filled) and holds records, else loaded into RAM to be completed
 * (a table that does not add up is dropped: the records are indexed
 * again).  Returns the records it holds. */
static uint64_t rs_ll_idx_load(const rs_learnlog_t *lg, rs_lseg_t *sg) {
    rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
    const uint64_t s = ih->slots, n = ih->indexed;
    if (s == sg->mask + 1 && n > 0) {
        free(sg->ram);
        sg->ram = NULL;
        sg->nidx = n;
        return n;
    }
    const int64_t min_t = ih->min_t, max_t = ih->max_t;
    const uint64_t cursor = ih->cursor;
    rs_ll_idx_init(lg, sg);
    ih->cursor = cursor;
    if (n == 0 || s < 16 || s > sg->mask + 1 || (s & (s - 1)))
        return 0;
    /* a copy of the file's table, checked: no more keys than records, at
     * most 70 % full (so every probe ends) */
    free(sg->ram);
    sg->ram = rs_malloc((size_t)s * sizeof(rs_ll_slot_t));
    memcpy(sg->ram, rs_ll_slots(sg), (size_t)s * sizeof(rs_ll_slot_t));
    sg->rmask = s - 1;
    uint64_t keys = 0, bad = 0;
    for (uint64_t i = 0; i < s; i++)
        if (sg->ram[i].key) {
            keys++;
            bad |= sg->ram[i].rec == 0 || sg->ram[i].rec > n;
        }
    if (bad || keys > n || keys * 10 > s * 7) {
        rs_ll_idx_init(lg, sg);
        ih->cursor = cursor;
        return 0;
    }
    sg->rkeys = keys;
    sg->nidx = n;
    ih->min_t = min_t;
    ih->max_t = max_t;
    return n;
}

/* New segment starting at `first`: files created under their temporary
 * names (suffix tmp: RS_LL_TMP_*) and preallocated (or memory), headers
 * written; rs_ll_seg_install puts them in place.  Uses only what is fixed
 * at open: any thread. */
static rs_lseg_t *rs_ll_seg_new(rs_learnlog_t *lg, uint64_t first,
                                const char *tmp, char *errstr,
                                size_t errstr_size) {
    rs_lseg_t *sg = rs_calloc(1, sizeof(*sg));
    sg->first = first;
    sg->cap = lg->cap;
    sg->mask = lg->slots - 1;
    size_t llen = RS_LL_PAGE + (size_t)lg->cap * lg->meta.rec_size,
           ilen = RS_LL_PAGE + (size_t)lg->slots * sizeof(rs_ll_slot_t);
    if (lg->mem) {
        sg->log = calloc(1, llen);
        sg->idx = calloc(1, ilen);
        if (!sg->log || !sg->idx) {
            rs_ll_unmap(lg, sg);
            rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                    "learning log: cannot allocate a %zu-byte segment", llen);
            return NULL;
        }
        sg->log_len = sg->log_file = llen;
        sg->idx_len = sg->idx_file = ilen;
    } else {
        /* the header page and a first step of records; the index file
         * its header page (Files grow, above) */
        char path[600];
        rs_ll_path_tmp(lg, first, "log", tmp, path, sizeof(path));
        if (rs_ll_map(path, RS_MIN(llen, RS_LL_PAGE + RS_LL_GROW), llen, 1,
                      &sg->log, &sg->log_len, &sg->log_file, errstr,
                      errstr_size) != RS_OK) {
            free(sg);
            return NULL;
        }
        rs_ll_path_tmp(lg, first, "idx", tmp, path, sizeof(path));
        if (rs_ll_map(path, RS_LL_PAGE, ilen, 1, &sg->idx, &sg->idx_len,
                      &sg->idx_file, errstr, errstr_size) != RS_OK) {
            char lp[600];
            rs_ll_path_tmp(lg, first, "log", tmp, lp, sizeof(lp));
            unlink(lp);
            munmap(sg->log, sg->log_len);
            free(sg);
            return NULL;
        }
        sg->tmp = tmp;
    }
    rs_ll_loghdr_t *h = (rs_ll_loghdr_t *)(void *)sg->log;
    memcpy(h->magic, RS_LL_LOG_MAGIC, 8);
    h->version = RS_LL_VERSION;
    h->rec_size = lg->meta.rec_size;
    h->kind = lg->meta.kind;
    h->arch = lg->meta.arch;
    h->names_hash = lg->meta.names_hash;
    h->dim = lg->meta.dim;
    h->partition = lg->partition;
    h->first = first;
    h->cap = lg->cap;
    h->sum = rs_checksum32(h, offsetof(rs_ll_loghdr_t, sum), 0);
    rs_ll_idx_hdr_new(sg);
    rs_ll_idx_init(lg, sg);
    sg->pf_next = RS_LL_PAGE;
    rs_ll_prefault(sg, RS_LL_PAGE);
    return sg;
}

/* Drop a segment that was never begun: its temporary files go. */
static void rs_ll_seg_discard(rs_learnlog_t *lg, rs_lseg_t *sg) {
    if (!sg) return;
    if (!lg->mem && sg->tmp) {
        char path[600];
        rs_ll_path_tmp(lg, sg->first, "log", sg->tmp, path, sizeof(path));
        unlink(path);
        rs_ll_path_tmp(lg, sg->first, "idx", sg->tmp, path, sizeof(path));
        unlink(path);
    }
    rs_ll_unmap(lg, sg);
}

/* Put a new segment's files in place: the .log first (from then on open
 * sees the segment; a missing .idx is rebuilt there), then the .idx.  A
 * file of that name left by a crash is replaced.  The writer, at the roll
 * (or at open).  RS_ERR_IO with errstr (the .log may then be in place:
 * open sees an empty last segment, which is what it is). */
static rs_err_t rs_ll_seg_install(rs_learnlog_t *lg, rs_lseg_t *sg,
                                  char *errstr, size_t errstr_size) {
    if (lg->mem || !sg->tmp) return RS_OK;
    static const char *const ext[2] = {"log", "idx"};
    for (int i = 0; i < 2; i++) {
        char from[600], to[600];
        rs_ll_path_tmp(lg, sg->first, ext[i], sg->tmp, from, sizeof(from));
        rs_ll_path(lg, sg->first, ext[i], to, sizeof(to));
        if (rename(from, to) != 0) {
            lg->dir_dirty = 1;
            return rs_errf(errstr, errstr_size, RS_ERR_IO,
                           "learning log %s: rename to %s: %s", from, to,
                           strerror(errno));
        }
    }
    sg->tmp = NULL;
    lg->dir_dirty = 1; /* the next sync makes the names durable */
    return RS_OK;
}

static void rs_ll_push(rs_learnlog_t *lg, rs_lseg_t *sg) {
    pthread_mutex_lock(&lg->lock);
    if (lg->nseg == lg->segcap) {
        lg->segcap = lg->segcap ? 2 * lg->segcap : 16;
        lg->segs = rs_realloc(lg->segs, sizeof(*lg->segs) * (size_t)lg->segcap);
    }
    lg->segs[lg->nseg++] = sg;
    lg->begin = 0; /* begun (rs_ll_roll) */
    RS_LL_TOT_ADD(segments, 1);
    atomic_store(&lg->st_segments, (uint64_t)lg->nseg);
    atomic_fetch_add(&lg->st_bytes, (uint64_t)(sg->log_file + sg->idx_file));
    pthread_mutex_unlock(&lg->lock);
}

/* Segment holding pos (NULL if none kept).  Resolver side. */
static rs_lseg_t *rs_ll_find_seg(rs_learnlog_t *lg, uint64_t pos) {
    rs_lseg_t *sg = lg->rseg;
    if (sg && pos >= sg->first && pos < sg->first + sg->cap) return sg;
    sg = NULL;
    pthread_mutex_lock(&lg->lock);
    int lo = 0, hi = lg->nseg - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        rs_lseg_t *m = lg->segs[mid];
        if (pos < m->first) hi = mid - 1;
        else if (pos >= m->first + m->cap) lo = mid + 1;
        else { sg = m; break; }
    }
    pthread_mutex_unlock(&lg->lock);
    if (sg) lg->rseg = sg;
    return sg;
}

/* --------------------------------------------------------------- open */

static int rs_ll_mkdirs(const char *dir) {
    char tmp[512];
    rs_strlcpy(tmp, dir, sizeof(tmp));
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int rs_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Map an existing segment; check its header against the log's metadata. */
static rs_err_t rs_ll_seg_open(rs_learnlog_t *lg, uint64_t first,
                               rs_lseg_t **out, char *errstr,
                               size_t errstr_size) {
    char path[600];
    rs_lseg_t *sg = rs_calloc(1, sizeof(*sg));
    rs_ll_path(lg, first, "log", path, sizeof(path));
    /* mapped at the size its header gives (the file may be shorter:
     * Files grow); a header that does not add up is refused below */
    size_t full = 0;
    {
        rs_ll_loghdr_t hh;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && pread(fd, &hh, sizeof(hh), 0) == (ssize_t)sizeof(hh) &&
            hh.rec_size > 0 && hh.cap > 0 &&
            hh.cap < ((uint64_t)1 << 40) / hh.rec_size)
            full = RS_LL_PAGE + (size_t)(hh.cap * hh.rec_size);
        if (fd >= 0) close(fd);
    }
    rs_err_t err = rs_ll_map(path, 0, full, 0, &sg->log, &sg->log_len,
                             &sg->log_file, errstr, errstr_size);
    if (err) { free(sg); return err; }
    const rs_ll_loghdr_t *h = (const rs_ll_loghdr_t *)(void *)sg->log;
    if (memcmp(h->magic, RS_LL_LOG_MAGIC, 8) || h->version != RS_LL_VERSION ||
        h->sum != rs_checksum32(h, offsetof(rs_ll_loghdr_t, sum), 0) ||
        h->first != first || h->cap == 0 ||
        sg->log_len < RS_LL_PAGE + h->cap * (uint64_t)h->rec_size) {
        rs_ll_unmap(lg, sg);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "learning log %s: damaged header", path);
    }
    const struct { const char *what; uint32_t file, want; } chk[] = {
        {"record size", h->rec_size, lg->meta.rec_size},
        {"model kind", h->kind, lg->meta.kind},
        {"model architecture", h->arch, lg->meta.arch},
        {"feature names", h->names_hash, lg->meta.names_hash},
        {"feature count", h->dim, lg->meta.dim},
        {"partition", (uint32_t)h->partition, (uint32_t)lg->partition}};
    for (size_t i = 0; i < RS_ARRAY_LEN(chk); i++)
        if (chk[i].file != chk[i].want) {
            rs_ll_unmap(lg, sg);
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "learning log %s was written for another %s "
                           "(%u, this model: %u)", path, chk[i].what,
                           chk[i].file, chk[i].want);
        }
    sg->first = first;
    sg->cap = h->cap;
    /* the index: reuse it if it matches, else rebuild */
    uint64_t slots = 16;
    while (slots < sg->cap * 10 / 7 + 1) slots <<= 1;
    sg->mask = slots - 1;
    size_t ilen = RS_LL_PAGE + (size_t)slots * sizeof(rs_ll_slot_t);
    rs_ll_path(lg, first, "idx", path, sizeof(path));
    err = rs_ll_map(path, 0, ilen, 0, &sg->idx, &sg->idx_len, &sg->idx_file,
                    errstr, errstr_size);
    int rebuild = err != RS_OK;
    if (!rebuild) {
        const rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
        /* a table of any size up to the full one, held by the file
         * (rs_ll_idx_load checks it further) */
        rebuild = sg->idx_len != ilen || memcmp(ih->magic, RS_LL_IDX_MAGIC, 8) ||
                  ih->first != first || ih->slots > slots ||
                  ih->indexed > sg->cap ||
                  sg->idx_file < RS_LL_PAGE + ih->slots * sizeof(rs_ll_slot_t);
        if (rebuild) {
            munmap(sg->idx, sg->idx_len);
            sg->idx = NULL;
            unlink(path);
        }
    }
    if (rebuild) {
        err = rs_ll_map(path, RS_LL_PAGE, ilen, 1, &sg->idx, &sg->idx_len,
                        &sg->idx_file, errstr, errstr_size);
        if (err) { rs_ll_unmap(lg, sg); return err; }
        rs_ll_idx_hdr_new(sg);
    }
    rs_ll_idx_load(lg, sg);
    *out = sg;
    return RS_OK;
}

rs_learnlog_t *rs_learnlog_open(const char *dir, int32_t partition,
                                const rs_learnlog_meta_t *meta,
                                int64_t segment_bytes, rs_err_t *err_out,
                                char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    uint64_t *firsts = NULL;
    if (!meta || meta->rec_size < RS_LREC_HDR || meta->rec_size % 8 ||
        partition < 0 || segment_bytes < (1 << 20)) {
        if (err_out) *err_out = RS_ERR_INVALID;
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "learning log: bad record size, partition or segment size");
        return NULL;
    }
    rs_learnlog_t *lg = rs_calloc(1, sizeof(*lg));
    lg->meta = *meta;
    lg->partition = partition;
    lg->mem = !dir || !dir[0];
    if (!lg->mem) rs_strlcpy(lg->dir, dir, sizeof(lg->dir));
    pthread_mutex_init(&lg->lock, NULL);
    lg->cap = ((uint64_t)segment_bytes - RS_LL_PAGE) / meta->rec_size;
    if (lg->cap < 16) lg->cap = 16;
    lg->slots = 16;
    while (lg->slots < lg->cap * 10 / 7 + 1) lg->slots <<= 1;

    if (lg->mem) goto fresh;
    if (rs_ll_mkdirs(lg->dir) != 0) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "learning log: cannot create %s: %s", lg->dir,
                      strerror(errno));
        goto fail;
    }
    /* the segments on disk, oldest first */
    DIR *dh = opendir(lg->dir);
    if (!dh) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "learning log: cannot read %s: %s", lg->dir,
                      strerror(errno));
        goto fail;
    }
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t l = strlen(de->d_name);
        if (l > 24 && strspn(de->d_name, "0123456789") == 20 &&
            (!strcmp(de->d_name + 24, "." RS_LL_TMP_SPARE) ||
             !strcmp(de->d_name + 24, "." RS_LL_TMP_NEW))) {
            /* a segment never begun (New segments, above): a spare, or
             * one whose creation a crash cut short */
            if (unlinkat(dirfd(dh), de->d_name, 0) == 0) lg->dir_dirty = 1;
            continue;
        }
        if (l != 24 || strcmp(de->d_name + 20, ".log")) continue;
        char *e;
        uint64_t f = strtoull(de->d_name, &e, 10);
        if (e != de->d_name + 20) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            firsts = rs_realloc(firsts, sizeof(*firsts) * (size_t)cap);
        }
        firsts[n++] = f;
    }
    closedir(dh);
    if (n) qsort(firsts, (size_t)n, sizeof(*firsts), rs_u64_cmp);
    for (int i = 0; i < n; i++) {
        rs_lseg_t *sg = NULL;
        err = rs_ll_seg_open(lg, firsts[i], &sg, errstr, errstr_size);
        if (err) goto fail;
        if (lg->nseg) {
            const rs_lseg_t *pv = lg->segs[lg->nseg - 1];
            if (pv->first + pv->cap != sg->first) {
                rs_ll_unmap(lg, sg);
                err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                              "learning log %s: segments do not follow each "
                              "other at position %" PRIu64, lg->dir,
                              pv->first + pv->cap);
                goto fail;
            }
        }
        rs_ll_push(lg, sg);
    }
    free(firsts);
    firsts = NULL;
    if (lg->nseg) {
        /* sealed segments: indexed fully (rebuild what is not) */
        for (int i = 0; i + 1 < lg->nseg; i++) {
            rs_lseg_t *sg = lg->segs[i];
            uint64_t done = sg->nidx;
            /* a sealed segment's file was grown to its full size before
             * the next one began; one that is not (damaged) reads as
             * zeros past its end, as a preallocated file did */
            err = rs_ll_grow(lg, sg->first, "log", &sg->log_file, sg->log_len,
                             sg->log_len, errstr, errstr_size);
            if (err) goto fail;
            for (uint64_t p = sg->first + done; p < sg->first + sg->cap; p++)
                rs_ll_idx_add(lg, sg, p);
        }
        /* the last one: its index holds the records up to `indexed`
         * (records never change once written); the valid records after
         * it are the rest of the log (a torn write ends it).  If the last
         * indexed record itself is damaged (pages lost in a machine
         * crash), everything is checked and indexed anew. */
        rs_lseg_t *sg = lg->segs[lg->nseg - 1];
        uint64_t cursor = rs_ll_ih(sg)->cursor, done = sg->nidx;
        if (done && (!rs_ll_rec_in(lg, sg, sg->first + done - 1) ||
                     !rs_ll_rec_ok(lg, rs_ll_at(lg, sg, sg->first + done - 1)))) {
            rs_ll_idx_init(lg, sg);
            done = 0;
        }
        uint64_t p = sg->first + done;
        while (p < sg->first + sg->cap && rs_ll_rec_in(lg, sg, p) &&
               rs_ll_rec_ok(lg, rs_ll_at(lg, sg, p))) {
            rs_ll_idx_add(lg, sg, p);
            p++;
        }
        rs_ll_ih(sg)->cursor = cursor;
        lg->wseg = sg;
        {   /* the pages from the end on: ahead of the writer */
            size_t at = (size_t)(rs_ll_at(lg, sg, p) - sg->log);
            sg->pf_next = at & ~(size_t)(RS_LL_PAGE - 1);
            rs_ll_prefault(sg, at);
        }
        atomic_store(&lg->end, p);
        lg->indexed = p;
        /* the maturity cursor: the furthest any segment remembers */
        lg->cursor = lg->segs[0]->first;
        for (int i = 0; i < lg->nseg; i++) {
            uint64_t c = rs_ll_ih(lg->segs[i])->cursor;
            if (c > lg->cursor) lg->cursor = c;
        }
        if (lg->cursor > p) lg->cursor = p;
        atomic_store(&lg->st_first, lg->segs[0]->first);
        atomic_store(&lg->st_indexed, p);
        atomic_store(&lg->st_cursor, lg->cursor);
        const rs_ll_idxhdr_t *ih0 = rs_ll_ih(lg->segs[0]);
        atomic_store(&lg->st_oldest_t, lg->segs[0]->nidx ? ih0->min_t : 0);
        if (err_out) *err_out = RS_OK;
        return lg;
    }
fresh:
    /* a new log: no segment until the first append or the resolver's
     * first prepare (The first segment too, above) */
    if (err_out) *err_out = RS_OK;
    return lg;
fail:
    free(firsts);
    if (err_out) *err_out = err;
    rs_learnlog_close(lg);
    return NULL;
}

void rs_learnlog_close(rs_learnlog_t *lg) {
    if (!lg) return;
    atomic_fetch_sub_explicit(&rs_ll_tot.segments, (uint64_t)lg->nseg,
                              memory_order_relaxed);
    if (lg->spare) {
        atomic_fetch_add_explicit(&lg->st_dropped, 1, memory_order_relaxed);
        RS_LL_TOT_ADD(dropped, 1);
    }
    for (int i = 0; i < lg->nseg; i++) {
        /* an index still in RAM goes to the file as it is: the next open
         * loads it instead of reading the records again */
        if (!lg->mem && lg->segs[i]->ram) rs_ll_idx_write(lg, lg->segs[i], 0);
        rs_ll_unmap(lg, lg->segs[i]);
    }
    free(lg->segs);
    rs_ll_seg_discard(lg, lg->spare); /* made ahead, never begun */
    pthread_mutex_destroy(&lg->lock);
    free(lg);
}

int32_t rs_learnlog_partition(const rs_learnlog_t *lg) { return lg->partition; }
const char *rs_learnlog_dir(const rs_learnlog_t *lg) { return lg->dir; }
void rs_learnlog_meta(const rs_learnlog_t *lg, rs_learnlog_meta_t *meta) {
    *meta = lg->meta;
}

/* ------------------------------------------------------------- writer */

uint64_t rs_learnlog_end(const rs_learnlog_t *lg) {
    return atomic_load_explicit(&lg->end, memory_order_relaxed);
}

/* The segment that begins at `end` (the current one is full, or a new
 * log has none: first = 1): the spare if the resolver made it (New
 * segments, above), else one made here.  Its files are in place on
 * return; NULL with errstr if it cannot be made (nothing changed).  The
 * writer. */
static rs_lseg_t *rs_ll_roll(rs_learnlog_t *lg, uint64_t end, int first,
                             char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&lg->lock);
    rs_lseg_t *sg = lg->spare;
    lg->spare = NULL;
    lg->begin = 1; /* until rs_ll_push */
    pthread_mutex_unlock(&lg->lock);
    if (sg && (sg->first != end ||
               rs_ll_seg_install(lg, sg, errstr, errstr_size) != RS_OK)) {
        /* made for another end (a spare for a new log's segment 0 the
         * writer had already made: see rs_learnlog_prepare), or cannot be
         * renamed: the writer makes its own */
        rs_ll_seg_discard(lg, sg);
        atomic_fetch_add_explicit(&lg->st_dropped, 1, memory_order_relaxed);
        RS_LL_TOT_ADD(dropped, 1);
        sg = NULL;
    }
    if (!sg) {
        sg = rs_ll_seg_new(lg, end, RS_LL_TMP_NEW, errstr, errstr_size);
        if (sg && rs_ll_seg_install(lg, sg, errstr, errstr_size) != RS_OK) {
            rs_ll_seg_discard(lg, sg);
            sg = NULL;
        }
        if (!sg) { /* not begun: counted when it is */
            pthread_mutex_lock(&lg->lock);
            lg->begin = 0;
            pthread_mutex_unlock(&lg->lock);
            return NULL;
        }
        atomic_fetch_add_explicit(&lg->st_made, 1, memory_order_relaxed);
        RS_LL_TOT_ADD(begun_made, 1);
    } else {
        atomic_fetch_add_explicit(first ? &lg->st_first_ready : &lg->st_spares,
                                  1, memory_order_relaxed);
        RS_LL_TOT_ADD(begun_ready, 1);
    }
    if (!first) {
        atomic_fetch_add_explicit(&lg->st_rolls, 1, memory_order_relaxed);
        RS_LL_TOT_ADD(rolls, 1);
    }
    return sg;
}

rs_err_t rs_learnlog_append(rs_learnlog_t *lg, const void *recs, int n,
                            char *errstr, size_t errstr_size) {
    const size_t R = lg->meta.rec_size;
    uint64_t end = atomic_load_explicit(&lg->end, memory_order_relaxed);
    const uint8_t *src = recs;
    while (n > 0) {
        rs_lseg_t *sg = lg->wseg;
        if (!sg || end == sg->first + sg->cap) { /* roll, or the first */
            rs_lseg_t *nsg = rs_ll_roll(lg, end, !sg, errstr, errstr_size);
            if (!nsg) return lg->mem ? RS_ERR_NOMEM : RS_ERR_IO;
            if (sg) rs_ll_ih(nsg)->cursor = rs_ll_ih(sg)->cursor;
            rs_ll_push(lg, nsg);
            lg->wseg = sg = nsg;
        }
        uint64_t room = sg->first + sg->cap - end;
        int k = (uint64_t)n < room ? n : (int)room;
        uint8_t *dst = rs_ll_at(lg, sg, end);
        const size_t at = (size_t)(dst - sg->log), upto = at + (size_t)k * R;
        if (upto + RS_LL_PF_AHEAD + RS_LL_PF_STEP > sg->log_file) {
            /* the file grows ahead of the writer and of the prefault */
            rs_err_t e = rs_ll_grow(lg, sg->first, "log", &sg->log_file,
                                    upto + RS_LL_PF_AHEAD + RS_LL_PF_STEP,
                                    sg->log_len, errstr, errstr_size);
            if (e && upto > sg->log_file) return e; /* nothing of it written */
        }
        if (at + RS_LL_PF_AHEAD > sg->pf_next) rs_ll_prefault(sg, upto);
        memcpy(dst, src, (size_t)k * R);
        atomic_store_explicit(&sg->dirty, 1, memory_order_relaxed);
        src += (size_t)k * R;
        end += (uint64_t)k;
        n -= k;
        atomic_store_explicit(&lg->end, end, memory_order_release);
    }
    return RS_OK;
}

rs_err_t rs_learnlog_rewind(rs_learnlog_t *lg, uint64_t pos, char *errstr,
                            size_t errstr_size) {
    uint64_t end = atomic_load(&lg->end);
    if (pos == end) return RS_OK;
    /* (a new log has no segment: its end, 0, is all it keeps) */
    const uint64_t kept = lg->nseg ? lg->segs[0]->first : end;
    if (pos > end || pos < kept)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "learning log %s: cannot rewind to %" PRIu64
                       " (kept: %" PRIu64 "..%" PRIu64 ")", lg->dir, pos,
                       kept, end);
    /* drop the segments after the one holding pos (keep a segment that
     * starts at pos: it is empty after the rewind) */
    pthread_mutex_lock(&lg->lock);
    while (lg->nseg > 1 && lg->segs[lg->nseg - 1]->first > pos) {
        rs_lseg_t *sg = lg->segs[--lg->nseg];
        atomic_fetch_sub(&lg->st_bytes, (uint64_t)(sg->log_file + sg->idx_file));
        if (!lg->mem) {
            char path[600];
            rs_ll_path(lg, sg->first, "log", path, sizeof(path));
            unlink(path);
            rs_ll_path(lg, sg->first, "idx", path, sizeof(path));
            unlink(path);
            lg->dir_dirty = 1;
        }
        rs_ll_unmap(lg, sg);
        atomic_fetch_sub_explicit(&rs_ll_tot.segments, 1,
                                  memory_order_relaxed);
    }
    atomic_store(&lg->st_segments, (uint64_t)lg->nseg);
    rs_lseg_t *sg = lg->segs[lg->nseg - 1];
    rs_lseg_t *spare = lg->spare; /* made for an end that may be gone */
    lg->spare = NULL;
    pthread_mutex_unlock(&lg->lock);
    if (spare) {
        atomic_fetch_add_explicit(&lg->st_dropped, 1, memory_order_relaxed);
        RS_LL_TOT_ADD(dropped, 1);
    }
    rs_ll_seg_discard(lg, spare);
    lg->prep_at = 0;
    uint64_t stop = RS_MIN(end, sg->first + sg->cap);
    memset(rs_ll_at(lg, sg, pos), 0, (size_t)(stop - pos) * lg->meta.rec_size);
    atomic_store(&sg->dirty, 1);
    lg->wseg = sg;
    lg->rseg = NULL;
    /* its index again, from what is left */
    uint64_t cursor = rs_ll_ih(sg)->cursor;
    rs_ll_ih(sg)->indexed = 0; /* the file's table may name records gone */
    rs_ll_idx_init(lg, sg);
    for (uint64_t p = sg->first; p < pos; p++) rs_ll_idx_add(lg, sg, p);
    rs_ll_ih(sg)->cursor = cursor < pos ? cursor : pos;
    atomic_store(&lg->end, pos);
    if (lg->indexed > pos) lg->indexed = pos;
    if (lg->cursor > pos) lg->cursor = pos;
    atomic_store(&lg->st_indexed, lg->indexed);
    atomic_store(&lg->st_cursor, lg->cursor);
    return RS_OK;
}

rs_err_t rs_learnlog_sync(rs_learnlog_t *lg, char *errstr,
                          size_t errstr_size) {
    if (lg->mem) return RS_OK;
    rs_err_t err = RS_OK;
    pthread_mutex_lock(&lg->lock);
    for (int i = 0; i < lg->nseg; i++) {
        rs_lseg_t *sg = lg->segs[i];
        if (!atomic_exchange(&sg->dirty, 0)) continue;
        if (msync(sg->log, sg->log_len, MS_SYNC) != 0 && err == RS_OK)
            err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                          "learning log %s: msync: %s", lg->dir,
                          strerror(errno));
    }
    pthread_mutex_unlock(&lg->lock);
    if (lg->dir_dirty) {
        int fd = open(lg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        lg->dir_dirty = 0;
    }
    return err;
}

/* ----------------------------------------------------------- resolver */

/* Fill of the segment being written from which its successor is made
 * ahead: half (with 256 MiB segments, ~100 k records of lead). */
#define RS_LL_SPARE_AT(cap) ((cap) / 2)

rs_err_t rs_learnlog_prepare(rs_learnlog_t *lg, char *errstr,
                             size_t errstr_size) {
    uint64_t end = atomic_load_explicit(&lg->end, memory_order_acquire);
    if (end < lg->prep_at) return RS_OK;
    /* the segment being written is the last one (only the writer adds
     * one; a rewind runs while no resolver does); none in a new log: its
     * first is made now (it begins at the end, 0) */
    pthread_mutex_lock(&lg->lock);
    if (lg->begin) { /* the writer begins one now: again at the next call */
        pthread_mutex_unlock(&lg->lock);
        return RS_OK;
    }
    const rs_lseg_t *w = lg->nseg ? lg->segs[lg->nseg - 1] : NULL;
    const uint64_t next = w ? w->first + w->cap : end,
                   from = w ? w->first + RS_LL_SPARE_AT(w->cap) : end;
    const int have = lg->spare && lg->spare->first == next;
    pthread_mutex_unlock(&lg->lock);
    if (have || end < from) {
        lg->prep_at = have ? next : from;
        return RS_OK;
    }
    rs_lseg_t *sg = rs_ll_seg_new(lg, next, RS_LL_TMP_SPARE, errstr,
                                  errstr_size);
    if (!sg) {
        /* the writer tries again at the roll (and reports it); here not
         * at every call */
        lg->prep_at = end + (next - end) / 4 + 1;
        atomic_fetch_add_explicit(&lg->st_prep_errors, 1,
                                  memory_order_relaxed);
        RS_LL_TOT_ADD(prep_errors, 1);
        return lg->mem ? RS_ERR_NOMEM : RS_ERR_IO;
    }
    if (!lg->mem) {
        /* the header pages on disk before the files can be renamed into
         * place: after a machine crash the new segment then opens (a
         * zero header would be refused as damaged) */
        (void)msync(sg->log, RS_LL_PAGE, MS_SYNC);
        (void)msync(sg->idx, RS_LL_PAGE, MS_SYNC);
    }
    rs_lseg_t *old = NULL;
    pthread_mutex_lock(&lg->lock);
    w = lg->nseg ? lg->segs[lg->nseg - 1] : NULL;
    /* still the one being written (or still none), and the writer is
     * not beginning the next one now */
    if (!lg->begin &&
        (w ? w->first + w->cap : atomic_load(&lg->end)) == next) {
        old = lg->spare;
        lg->spare = sg;
        sg = NULL;
    }
    pthread_mutex_unlock(&lg->lock);
    atomic_fetch_add_explicit(&lg->st_prepared, 1, memory_order_relaxed);
    RS_LL_TOT_ADD(prepared, 1);
    if (old || sg) { /* a stale spare; or the writer rolled meanwhile */
        int n = (old != NULL) + (sg != NULL);
        atomic_fetch_add_explicit(&lg->st_dropped, (uint64_t)n,
                                  memory_order_relaxed);
        RS_LL_TOT_ADD(dropped, n);
    }
    rs_ll_seg_discard(lg, old);
    rs_ll_seg_discard(lg, sg);
    lg->prep_at = next;
    return RS_OK;
}

uint64_t rs_learnlog_index(rs_learnlog_t *lg) {
    uint64_t end = atomic_load_explicit(&lg->end, memory_order_acquire);
    uint64_t n = 0;
    while (lg->indexed < end) {
        rs_lseg_t *sg = rs_ll_find_seg(lg, lg->indexed);
        if (!sg) break; /* cannot happen: the writer keeps what it wrote */
        uint64_t stop = RS_MIN(end, sg->first + sg->cap);
        for (uint64_t p = lg->indexed; p < stop; p++) rs_ll_idx_add(lg, sg, p);
        n += stop - lg->indexed;
        lg->indexed = stop;
    }
    atomic_store_explicit(&lg->st_indexed, lg->indexed, memory_order_relaxed);
    return n;
}

uint64_t rs_learnlog_indexed(const rs_learnlog_t *lg) { return lg->indexed; }

static int rs_ll_probe(const rs_lseg_t *sg, uint64_t key, uint64_t *pos) {
    const rs_ll_slot_t *sl = sg->ram ? sg->ram : rs_ll_slots(sg);
    const uint64_t mask = sg->ram ? sg->rmask : sg->mask;
    uint64_t i = key & mask;
    while (sl[i].key) {
        if (sl[i].key == key) {
            *pos = sg->first + sl[i].rec - 1;
            return 1;
        }
        i = (i + 1) & mask;
    }
    return 0;
}

rs_err_t rs_learnlog_find(rs_learnlog_t *lg, uint64_t id, int64_t t_hint,
                          uint64_t *pos) {
    uint64_t key = id ? id : 1, probes = 0;
    rs_err_t err = RS_ERR_NOTFOUND;
    atomic_fetch_add_explicit(&lg->st_finds, 1, memory_order_relaxed);
    pthread_mutex_lock(&lg->lock);
    /* pass 0: segments whose time range holds the hint; pass 1: the rest,
     * newest first (labels are about recent events more often) */
    for (int pass = t_hint ? 0 : 1; pass < 2 && err; pass++)
        for (int i = lg->nseg - 1; i >= 0; i--) {
            const rs_lseg_t *sg = lg->segs[i];
            const rs_ll_idxhdr_t *ih = rs_ll_ih(sg);
            if (!sg->nidx) continue;
            int in = t_hint >= ih->min_t && t_hint <= ih->max_t;
            if (t_hint && (pass == 0) != in) continue;
            probes++;
            uint64_t p;
            if (rs_ll_probe(sg, key, &p)) {
                /* the index may hold a first record the caller's id only
                 * shares a hash with: compare what the record says */
                const rs_lrec_hdr_t *h =
                    (const rs_lrec_hdr_t *)rs_ll_at(lg, sg, p);
                if (h->id == id || (!id && h->id == 0)) {
                    *pos = p;
                    err = RS_OK;
                    break;
                }
            }
        }
    pthread_mutex_unlock(&lg->lock);
    atomic_fetch_add_explicit(&lg->st_probes, probes, memory_order_relaxed);
    return err;
}

const void *rs_learnlog_rec(rs_learnlog_t *lg, uint64_t pos) {
    if (pos >= atomic_load_explicit(&lg->end, memory_order_acquire))
        return NULL;
    rs_lseg_t *sg = rs_ll_find_seg(lg, pos);
    return sg ? rs_ll_at(lg, sg, pos) : NULL;
}

void rs_learnlog_set_state(rs_learnlog_t *lg, uint64_t pos, uint8_t state) {
    rs_lseg_t *sg = rs_ll_find_seg(lg, pos);
    if (!sg) return;
    ((rs_lrec_hdr_t *)(void *)rs_ll_at(lg, sg, pos))->state = state;
    atomic_store_explicit(&sg->dirty, 1, memory_order_relaxed);
}

rs_err_t rs_learnlog_next_mature(rs_learnlog_t *lg, int64_t cutoff_ms,
                                 uint64_t *pos) {
    uint64_t end = atomic_load_explicit(&lg->end, memory_order_acquire);
    rs_err_t err = RS_ERR_NOTFOUND;
    while (lg->cursor < end) {
        rs_lseg_t *sg = rs_ll_find_seg(lg, lg->cursor);
        if (!sg) { /* deleted under it: cannot happen, skip ahead */
            lg->cursor++;
            continue;
        }
        const rs_lrec_hdr_t *h =
            (const rs_lrec_hdr_t *)rs_ll_at(lg, sg, lg->cursor);
        if (h->state & RS_LREC_LEARNED) {
            lg->cursor++;
            rs_ll_ih(sg)->cursor = lg->cursor;
            continue;
        }
        if (h->t < cutoff_ms) {
            *pos = lg->cursor;
            err = RS_OK;
        }
        break;
    }
    atomic_store_explicit(&lg->st_cursor, lg->cursor, memory_order_relaxed);
    return err;
}

int rs_learnlog_truncate(rs_learnlog_t *lg, int64_t keep_after_ms) {
    int del = 0;
    for (;;) {
        pthread_mutex_lock(&lg->lock);
        rs_lseg_t *sg = lg->nseg > 1 ? lg->segs[0] : NULL;
        if (!sg || lg->cursor < sg->first + sg->cap ||
            !(rs_ll_ih(sg)->max_t < keep_after_ms)) {
            pthread_mutex_unlock(&lg->lock);
            break;
        }
        memmove(lg->segs, lg->segs + 1, sizeof(*lg->segs) * (size_t)(lg->nseg - 1));
        lg->nseg--;
        atomic_store(&lg->st_segments, (uint64_t)lg->nseg);
        atomic_fetch_sub(&lg->st_bytes, (uint64_t)(sg->log_file + sg->idx_file));
        atomic_store(&lg->st_first, lg->segs[0]->first);
        const rs_ll_idxhdr_t *ih0 = rs_ll_ih(lg->segs[0]);
        atomic_store(&lg->st_oldest_t, lg->segs[0]->nidx ? ih0->min_t : 0);
        pthread_mutex_unlock(&lg->lock);
        if (lg->rseg == sg) lg->rseg = NULL;
        if (!lg->mem) {
            char path[600];
            rs_ll_path(lg, sg->first, "log", path, sizeof(path));
            unlink(path);
            rs_ll_path(lg, sg->first, "idx", path, sizeof(path));
            unlink(path);
            lg->dir_dirty = 1;
        }
        rs_ll_unmap(lg, sg);
        atomic_fetch_add(&lg->st_deleted, 1);
        RS_LL_TOT_ADD(deleted, 1);
        atomic_fetch_sub_explicit(&rs_ll_tot.segments, 1,
                                  memory_order_relaxed);
        del++;
    }
    return del;
}

void rs_learnlog_stats(const rs_learnlog_t *lg, rs_learnlog_stats_t *st) {
    memset(st, 0, sizeof(*st));
    st->first = atomic_load(&lg->st_first);
    st->end = atomic_load(&lg->end);
    st->cursor = atomic_load(&lg->st_cursor);
    st->indexed = atomic_load(&lg->st_indexed);
    st->segments = atomic_load(&lg->st_segments);
    st->bytes = atomic_load(&lg->st_bytes);
    st->rec_size = lg->meta.rec_size;
    st->finds = atomic_load(&lg->st_finds);
    st->probes = atomic_load(&lg->st_probes);
    st->deleted = atomic_load(&lg->st_deleted);
    st->rolls = atomic_load(&lg->st_rolls);
    st->spares = atomic_load(&lg->st_spares);
    st->prepared = atomic_load(&lg->st_prepared);
    st->first_ready = atomic_load(&lg->st_first_ready);
    st->made = atomic_load(&lg->st_made);
    st->dropped = atomic_load(&lg->st_dropped);
    st->prep_errors = atomic_load(&lg->st_prep_errors);
    st->oldest_t = atomic_load(&lg->st_oldest_t);
}

void rs_learnlog_totals(rs_learnlog_totals_t *t) {
    t->begun_made = atomic_load(&rs_ll_tot.begun_made);
    t->begun_ready = atomic_load(&rs_ll_tot.begun_ready);
    t->rolls = atomic_load(&rs_ll_tot.rolls);
    t->prepared = atomic_load(&rs_ll_tot.prepared);
    t->dropped = atomic_load(&rs_ll_tot.dropped);
    t->prep_errors = atomic_load(&rs_ll_tot.prep_errors);
    t->deleted = atomic_load(&rs_ll_tot.deleted);
    t->segments = atomic_load(&rs_ll_tot.segments);
}
