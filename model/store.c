/* store.c -- the model store: a directory of published model versions.
 *
 * Design note
 * -----------
 * One file per version, <dir>/<version>.rsm, written by rs_model_save
 * (tmp file, fsync, rename, fsync of the directory), so a reader sees no
 * file or a whole one.  The directory is the only state: the number of a
 * version is parsed from its name ("<kind>-<8 hex>-<n>"), the save time is
 * the file's mtime, the update count is read from the head of the file
 * (rs_model_peek: no checksum, no model built).  Listing and pruning scan
 * the directory each time: it holds `keep` files, and both are cold
 * (per publish, per HTTP request).
 *
 * Only rs_model_store_put changes the directory (its file, prunes, and
 * leftover tmp files of a crashed save); open, next, list and load only
 * read it, so a CLI may open the store of a running service.
 *
 * Invariants: numbers handed out by rs_model_store_next never go down
 * within one store object (`hi` remembers the highest seen or saved, so a
 * file deleted by hand does not give its number again); a put never
 * prunes the version it just wrote.
 *
 * Threads: a mutex serialises the calls on one store (the trainer thread
 * puts while an HTTP thread lists).  Loads only read the directory and do
 * not take it.  One writing process per directory.
 */
#define _GNU_SOURCE
#include "model/model_int.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_STORE_EXT  ".rsm"
#define RS_STORE_HEAD 4096   /* first read of a file for its counters */

struct rs_model_store_s {
    pthread_mutex_t lock;
    char *dir;
    int keep;
    uint64_t hi;             /* highest number seen or saved           */
};

/* 1 if v[0..len) is a version name "<kind>-<8 hex>-<n>[.<tag>]" (kind:
 * 1-15 lower-case letters; n: 1-19 digits; tag: rs_model_version_tag_valid),
 * with its number in *num and the length of the part before the tag in
 * *base (len without a tag). */
static int rs_store_parse_tag(const char *v, size_t len, uint64_t *num,
                              size_t *base) {
    size_t i = 0;
    while (i < len && v[i] >= 'a' && v[i] <= 'z') i++;
    if (i < 1 || i > 15 || i >= len || v[i] != '-') return 0;
    i++;
    for (int k = 0; k < 8; k++, i++)
        if (i >= len || !((v[i] >= '0' && v[i] <= '9') ||
                          (v[i] >= 'a' && v[i] <= 'f')))
            return 0;
    if (i >= len || v[i] != '-') return 0;
    i++;
    size_t d0 = i;
    uint64_t n = 0;
    for (; i < len && v[i] != '.'; i++) {
        if (v[i] < '0' || v[i] > '9') return 0;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (i == d0 || i - d0 > 19) return 0;
    if (i < len && !rs_model_version_tag_valid(v + i + 1, len - i - 1))
        return 0;
    *num = n;
    if (base) *base = i;
    return 1;
}

static int rs_store_parse(const char *v, size_t len, uint64_t *num) {
    return rs_store_parse_tag(v, len, num, NULL);
}

int rs_model_version_tag_valid(const char *tag, size_t len) {
    if (len < 1 || len > RS_MODEL_TAG_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = tag[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && c == '-')) return 0;
    }
    return 1;
}

int rs_model_version_parse(const char *v, uint64_t *num, size_t *base) {
    uint64_t n;
    size_t b, len = v ? strnlen(v, RS_VERSION_MAX) : RS_VERSION_MAX;
    if (len >= RS_VERSION_MAX || !rs_store_parse_tag(v, len, &n, &b)) return 0;
    if (num) *num = n;
    if (base) *base = b;
    return 1;
}

static int rs_store_has_suffix(const char *s, size_t len, const char *suf) {
    size_t sl = strlen(suf);
    return len > sl && !memcmp(s + len - sl, suf, sl);
}

static char *rs_store_path(const rs_model_store_t *st, const char *name,
                           const char *ext) {
    size_t n = strlen(st->dir) + strlen(name) + strlen(ext) + 2;
    char *p = rs_malloc(n);
    snprintf(p, n, "%s/%s%s", st->dir, name, ext);
    return p;
}

/* Update count of a version file from its head: RS_STORE_HEAD bytes first,
 * the whole file if the names need more.  0 if unreadable or damaged. */
static uint64_t rs_store_updates(const char *path, uint64_t size) {
    uint64_t updates = 0, vstep = 0;
    FILE *fp = fopen(path, "rbe");
    if (!fp) return 0;
    size_t want = size < RS_STORE_HEAD ? (size_t)size : RS_STORE_HEAD;
    uint8_t *buf = rs_malloc(want ? want : 1);
    size_t got = fread(buf, 1, want, fp);
    rs_err_t err = rs_model_peek(buf, got, &updates, &vstep);
    if (err == RS_ERR_AGAIN && got == want && want < size &&
        size <= (1u << 30)) {
        buf = rs_realloc(buf, (size_t)size);
        got += fread(buf + got, 1, (size_t)size - got, fp);
        err = rs_model_peek(buf, got, &updates, &vstep);
    }
    fclose(fp);
    rs_free(buf);
    return err == RS_OK ? updates : 0;
}

static int rs_store_cmp(const void *a, const void *b) {
    const rs_model_store_entry_t *x = a, *y = b;
    if (x->number != y->number) return x->number > y->number ? -1 : 1;
    if (x->saved_at_ms != y->saved_at_ms)
        return x->saved_at_ms > y->saved_at_ms ? -1 : 1;
    return strcmp(y->version, x->version);
}

/* The versions in the directory, newest first (malloc'd, *n entries);
 * with_updates: also read each file's update count.  Raises st->hi. */
static rs_model_store_entry_t *rs_store_scan(rs_model_store_t *st,
                                             int with_updates, int *n) {
    *n = 0;
    DIR *d = opendir(st->dir);
    if (!d) return NULL;
    int cap = 0;
    rs_model_store_entry_t *es = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        uint64_t num;
        if (!rs_store_has_suffix(de->d_name, len, RS_STORE_EXT)) continue;
        size_t vl = len - strlen(RS_STORE_EXT);
        if (vl >= RS_VERSION_MAX || !rs_store_parse(de->d_name, vl, &num))
            continue;
        char *path = rs_store_path(st, de->d_name, "");
        struct stat sb;
        if (stat(path, &sb) || !S_ISREG(sb.st_mode)) { /* raced a prune */
            rs_free(path);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            es = rs_realloc(es, sizeof(*es) * (size_t)cap);
        }
        rs_model_store_entry_t *e = &es[(*n)++];
        memset(e, 0, sizeof(*e));
        memcpy(e->version, de->d_name, vl);
        e->version[vl] = '\0';
        e->number = num;
        e->saved_at_ms = (int64_t)sb.st_mtim.tv_sec * 1000 +
                         sb.st_mtim.tv_nsec / 1000000;
        e->bytes = (uint64_t)sb.st_size;
        if (with_updates) e->updates = rs_store_updates(path, e->bytes);
        rs_free(path);
        if (num > st->hi) st->hi = num;
    }
    closedir(d);
    if (*n > 1) qsort(es, (size_t)*n, sizeof(*es), rs_store_cmp);
    return es;
}

/* Remove "<version>.rsm.tmp" files: leftovers of a save that crashed
 * between write and rename.  Only a put does it (under the lock, after its
 * own save): the one writing process has no other save in flight, while a
 * reader (a CLI opening the store of a running service) must not touch
 * the writer's files. */
static void rs_store_clean_tmp(rs_model_store_t *st) {
    DIR *d = opendir(st->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        uint64_t num;
        if (!rs_store_has_suffix(de->d_name, len, RS_STORE_EXT ".tmp")) continue;
        size_t vl = len - strlen(RS_STORE_EXT ".tmp");
        if (!rs_store_parse(de->d_name, vl, &num)) continue;
        char *path = rs_store_path(st, de->d_name, "");
        if (unlink(path) == 0)
            rs_warn("model", "model store %s: removed %s left by an "
                    "interrupted save", st->dir, de->d_name);
        rs_free(path);
    }
    if (d) closedir(d);
}

/* mkdir -p */
static int rs_store_mkdirs(const char *dir) {
    char *p = rs_strdup(dir);
    int rc = 0;
    for (char *s = p + 1; *s && !rc; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) && errno != EEXIST) rc = -1;
        *s = '/';
    }
    if (!rc && mkdir(p, 0755) && errno != EEXIST) rc = -1;
    rs_free(p);
    return rc;
}

rs_model_store_t *rs_model_store_open(const char *dir, int keep, char *errstr,
                                      size_t errstr_size) {
    if (!dir || !dir[0]) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "model store: no directory (model.store_dir)");
        return NULL;
    }
    if (keep < 1) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "model store %s: keep_versions %d must be at least 1", dir,
                keep);
        return NULL;
    }
    struct stat sb;
    if (rs_store_mkdirs(dir) || stat(dir, &sb)) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "model store %s: cannot create the directory: %s", dir,
                strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "model store %s: not a directory", dir);
        return NULL;
    }
    if (access(dir, W_OK | X_OK)) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "model store %s: directory not writable: %s", dir,
                strerror(errno));
        return NULL;
    }
    rs_model_store_t *st = rs_calloc(1, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    st->dir = rs_strdup(dir);
    size_t dl = strlen(st->dir);
    while (dl > 1 && st->dir[dl - 1] == '/') st->dir[--dl] = '\0';
    st->keep = keep;
    int n;
    rs_free(rs_store_scan(st, 0, &n)); /* st->hi */
    return st;
}

void rs_model_store_close(rs_model_store_t *st) {
    if (!st) return;
    pthread_mutex_destroy(&st->lock);
    rs_free(st->dir);
    rs_free(st);
}

uint64_t rs_model_store_next(rs_model_store_t *st) {
    pthread_mutex_lock(&st->lock);
    int n;
    rs_free(rs_store_scan(st, 0, &n));
    uint64_t next = st->hi + 1;
    pthread_mutex_unlock(&st->lock);
    return next;
}

rs_err_t rs_model_store_put(rs_model_store_t *st, const rs_model_t *m,
                            char *errstr, size_t errstr_size) {
    rs_model_stats_t ms; /* the version of m's own weights */
    rs_model_stats(m, &ms);
    uint64_t num;
    if (!rs_store_parse(ms.version, strlen(ms.version), &num))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "model store %s: '%s' is not a version name", st->dir,
                       ms.version);
    pthread_mutex_lock(&st->lock);
    char *path = rs_store_path(st, ms.version, RS_STORE_EXT);
    rs_err_t err = rs_model_save(m, path, errstr, errstr_size);
    rs_free(path);
    if (err) {
        pthread_mutex_unlock(&st->lock);
        return err;
    }
    if (num > st->hi) st->hi = num;
    /* prune: everything after the newest `keep`, except this version */
    int n;
    rs_model_store_entry_t *es = rs_store_scan(st, 0, &n);
    for (int i = st->keep; i < n; i++) {
        if (!strcmp(es[i].version, ms.version)) continue;
        char *old = rs_store_path(st, es[i].version, RS_STORE_EXT);
        if (unlink(old) && errno != ENOENT)
            rs_warn("model", "model store %s: cannot prune %s: %s", st->dir,
                    es[i].version, strerror(errno));
        rs_free(old);
    }
    rs_free(es);
    rs_store_clean_tmp(st);
    pthread_mutex_unlock(&st->lock);
    return RS_OK;
}

int rs_model_store_list(rs_model_store_t *st, rs_model_store_entry_t *out,
                        int max) {
    if (!out || max <= 0) return 0;
    pthread_mutex_lock(&st->lock);
    int n;
    rs_model_store_entry_t *es = rs_store_scan(st, 1, &n);
    pthread_mutex_unlock(&st->lock);
    if (n > max) n = max;
    if (n > 0) memcpy(out, es, sizeof(*es) * (size_t)n);
    rs_free(es);
    return n;
}

rs_err_t rs_model_store_load(rs_model_store_t *st, const char *version,
                             const rs_model_conf_t *conf, rs_model_t **mp,
                             char *errstr, size_t errstr_size) {
    uint64_t num;
    *mp = NULL;
    size_t vl = version ? strnlen(version, RS_VERSION_MAX) : 0;
    if (!version || vl >= RS_VERSION_MAX || !rs_store_parse(version, vl, &num))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "'%.*s' is not a model version (<kind>-<8 hex>-<n>"
                       "[.<tag>], e.g. seq-0a1b2c3d-17)",
                       version ? (int)RS_MIN(vl, 64) : 6,
                       version ? version : "(null)");
    char *path = rs_store_path(st, version, RS_STORE_EXT);
    struct stat sb;
    rs_err_t err;
    if (stat(path, &sb) && errno == ENOENT) {
        err = rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                      "model version %s is not in the store %s (never "
                      "saved there, or pruned: it keeps the newest %d)",
                      version, st->dir, st->keep);
    } else if ((err = rs_model_load(path, conf, mp, errstr, errstr_size)) ==
               RS_OK) {
        /* a tag is in the name only (model.h rs_model_set_version_tag) */
        size_t base = vl;
        rs_store_parse_tag(version, vl, &num, &base);
        if (base < vl) rs_model_set_version_tag(*mp, version + base + 1);
        rs_model_stats_t ms;
        rs_model_stats(*mp, &ms);
        if (strcmp(ms.version, version)) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                          "model store %s: %s holds version %s", st->dir,
                          path, ms.version);
            rs_model_destroy(*mp);
            *mp = NULL;
        }
    }
    rs_free(path);
    return err;
}
