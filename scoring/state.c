/* state.c -- the state directory and the learning logs in it (state.h). */
#define _GNU_SOURCE
#include "scoring/state.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rs_state_s {
    char dir[512];            /* <dir>/<group>                            */
    char tmp_root[512];       /* ephemeral: the temporary directory       */
    char lineage[16];
    rs_learnlog_meta_t meta;
    int64_t segment_bytes;
    rs_learnlog_t **logs;     /* [RS_STATE_MAX_PARTS]                     */
};

static const rs_conf_field_t rs_state_fields[] = {
    {"dir", RS_CONF_STRING, "", offsetof(rs_state_conf_t, dir),
     sizeof(((rs_state_conf_t *)0)->dir),
     "directory of everything that survives a restart (feature checkpoint, "
     "model versions, learning logs, observed label delays), one "
     "subdirectory per consumer group; empty = $RISKSTREAM_STATE_DIR, else "
     "/var/lib/riskstream as root, else ~/.local/state/riskstream; with the "
     "embedded broker and no dir set, a temporary directory removed at exit",
     NULL, 0, 0},
    {"changelog", RS_CONF_ENUM, "auto", offsetof(rs_state_conf_t, changelog),
     0, "write every change of partition-local state (entity features, "
     "sequence caches, event index, duplicates) to the compacted topic "
     "<group>-state-changelog, so another instance restores a partition "
     "without replaying its input; auto = true with real brokers, false "
     "with the embedded one (librdkafka's mock, `riskstream broker` too).  Costs a record per entity per batch (~1.2 KB "
     "of features plus ~9 KB of sequence cache at the defaults) and ~150 "
     "bytes per event (README, Scale-out)", "auto|true|false", 0, 0},
    {"standby", RS_CONF_INT, "0", offsetof(rs_state_conf_t, standby), 0,
     "standby replicas: keep warm copies of the state of N x (partitions "
     "owned) partitions owned elsewhere -- those after this instance's "
     "own range -- by reading their changelog continuously (and keep "
     "revoked partitions placed here warm), so a failover reads only the "
     "changelog tail; 0 = off.  Needs state.changelog (false with N > 0 "
     "is a config error).  Each copy costs what the active state of its "
     "partition costs: size features.max_keys, seq.max_entities, "
     "features.label_index and service.dedup_max for (1 + N) x the owned "
     "share (README, Scale-out)", NULL, 0, 16},
};

void rs_state_conf_section(rs_conf_section_t *sec, rs_state_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "state";
    sec->desc = "where state lives: checkpoints, model store, learning logs";
    sec->fields = rs_state_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_state_fields);
    sec->base = conf;
}

void rs_state_default_dir(char *buf, size_t size) {
    const char *e = getenv("RISKSTREAM_STATE_DIR");
    if (e && e[0]) {
        snprintf(buf, size, "%s", e);
        return;
    }
    if (geteuid() == 0) {
        snprintf(buf, size, "/var/lib/riskstream");
        return;
    }
    const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
    if (x && x[0])
        snprintf(buf, size, "%s/riskstream", x);
    else
        snprintf(buf, size, "%s/.local/state/riskstream", h && h[0] ? h : ".");
}

static int rs_state_mkdirs(const char *dir) {
    char tmp[600];
    rs_strlcpy(tmp, dir, sizeof(tmp));
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

rs_state_t *rs_state_new(const rs_state_conf_t *conf, const char *group,
                         int ephemeral, const rs_learnlog_meta_t *meta,
                         int64_t segment_bytes, char *errstr,
                         size_t errstr_size) {
    rs_state_t *st = rs_calloc(1, sizeof(*st));
    char base[512];
    if (conf->dir[0]) {
        rs_strlcpy(base, conf->dir, sizeof(base));
    } else if (ephemeral) {
        const char *t = getenv("TMPDIR");
        snprintf(st->tmp_root, sizeof(st->tmp_root),
                 "%s/riskstream-state-XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(st->tmp_root)) {
            rs_errf(errstr, errstr_size, RS_ERR_IO,
                    "state: cannot create a temporary directory: %s",
                    strerror(errno));
            st->tmp_root[0] = 0;
            goto fail;
        }
        rs_strlcpy(base, st->tmp_root, sizeof(base));
    } else {
        rs_state_default_dir(base, sizeof(base));
    }
    if (snprintf(st->dir, sizeof(st->dir), "%s/%s", base, group) >=
        (int)sizeof(st->dir)) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "state.dir: '%s' is too long", base);
        goto fail;
    }
    if (rs_state_mkdirs(st->dir) != 0) {
        rs_errf(errstr, errstr_size, RS_ERR_IO,
                "state.dir: cannot create %s: %s", st->dir, strerror(errno));
        goto fail;
    }
    if (meta) st->meta = *meta;
    uint32_t lin = rs_checksum32(&st->meta, sizeof(st->meta), 0x6c696e65u);
    snprintf(st->lineage, sizeof(st->lineage), "%08x", lin);
    st->segment_bytes = segment_bytes;
    st->logs = rs_calloc(RS_STATE_MAX_PARTS, sizeof(*st->logs));
    return st;
fail:
    rs_state_destroy(st);
    return NULL;
}

static int rs_state_rm1(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void rs_state_destroy(rs_state_t *st) {
    if (!st) return;
    if (st->logs)
        for (int i = 0; i < RS_STATE_MAX_PARTS; i++)
            rs_learnlog_close(st->logs[i]);
    free(st->logs);
    if (st->tmp_root[0])
        nftw(st->tmp_root, rs_state_rm1, 16, FTW_DEPTH | FTW_PHYS);
    free(st);
}

const char *rs_state_dir(const rs_state_t *st) { return st->dir; }
int rs_state_ephemeral(const rs_state_t *st) { return st->tmp_root[0] != 0; }

void rs_state_path(const rs_state_t *st, const char *name, char *buf,
                   size_t size) {
    snprintf(buf, size, "%s/%s", st->dir, name);
}

rs_learnlog_t *rs_state_log(rs_state_t *st, int32_t partition,
                            rs_err_t *err, char *errstr,
                            size_t errstr_size) {
    if (partition < 0 || partition >= RS_STATE_MAX_PARTS) {
        if (err) *err = RS_ERR_INVALID;
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "state: partition %d has no learning log (max %d)",
                (int)partition, RS_STATE_MAX_PARTS);
        return NULL;
    }
    if (st->logs[partition]) {
        if (err) *err = RS_OK;
        return st->logs[partition];
    }
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/learn/%s/p%d", st->dir, st->lineage,
             (int)partition);
    st->logs[partition] = rs_learnlog_open(dir, partition, &st->meta,
                                           st->segment_bytes, err, errstr,
                                           errstr_size);
    return st->logs[partition];
}

rs_learnlog_t *rs_state_log_if_open(const rs_state_t *st, int32_t partition) {
    return partition >= 0 && partition < RS_STATE_MAX_PARTS
               ? st->logs[partition] : NULL;
}

void rs_state_close_log(rs_state_t *st, int32_t partition) {
    if (partition < 0 || partition >= RS_STATE_MAX_PARTS) return;
    rs_learnlog_close(st->logs[partition]);
    st->logs[partition] = NULL;
}
