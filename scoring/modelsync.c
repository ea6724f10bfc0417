/* modelsync.c -- one model across instances: the model topic, the
 * versions of the other instances, the combination (see modelsync.h).
 *
 * Invariants:
 *  - `peers` holds the newest valid version of every OTHER instance seen
 *    on the topic (a newer message of an instance replaces its entry); its
 *    bytes are refcounted blobs, so the trainer thread can combine them
 *    while the sync thread replaces them.  Under `lock`.
 *  - The trainer-thread state (own_*, base_*, pending*) is touched only by
 *    the hooks, which the trainer calls one at a time (before its thread
 *    starts, on it, then after it stopped).
 *  - Knowledge of T's newest version = base_know + what T learned since it
 *    became base (its own origin, the instance id): T's counters minus
 *    base_updates / base_labels / base_obs.
 */
#define _GNU_SOURCE
#include "scoring/modelsync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ingest/ingest.h"
#include "model/combine.h"
#include "scoring/http.h"

static const rs_conf_field_t rs_msync_fields[] = {
    {"enabled", RS_CONF_BOOL, "false", offsetof(rs_msync_conf_t, enabled), 0,
     "one model across the instances of the consumer group: every published "
     "version goes to the model topic and each instance combines the "
     "others' versions every period (docs/model.md, \"One model across "
     "instances\"); needs topics.brokers (with the embedded broker there is "
     "one instance: nothing to do)",
     NULL, 0, 0},
    {"period", RS_CONF_DURATION, "60s", offsetof(rs_msync_conf_t, period_ms),
     0,
     "how often an instance combines the newest versions of all instances "
     "(after publishing its own if it learned anything)",
     NULL, 100, 86400000},
    {"instance", RS_CONF_STRING, "", offsetof(rs_msync_conf_t, instance),
     sizeof(((rs_msync_conf_t *)0)->instance),
     "this instance's id: the key of its versions on the model topic and the "
     "tag of their names (1-16 of a-z 0-9 -, not starting with avg); keep it "
     "across restarts; empty = the host name and a hash of the model store "
     "directory",
     NULL, 0, 0},
    {"topic", RS_CONF_STRING, "", offsetof(rs_msync_conf_t, topic),
     sizeof(((rs_msync_conf_t *)0)->topic),
     "the compacted model topic (one partition; created by riskstream with "
     "cleanup.policy=compact if missing); empty = <group>-models",
     NULL, 0, 0},
    {"max_bytes", RS_CONF_INT, "67108864",
     offsetof(rs_msync_conf_t, max_bytes), 0,
     "largest model message (the model file plus ~10 KB): the producer's "
     "message.max.bytes and the topic's max.message.bytes when riskstream "
     "creates it (a seq model at the seq: defaults is 4.8 MB)",
     NULL, 1048576, 900000000},
};

void rs_msync_conf_section(rs_conf_section_t *sec, rs_msync_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "sync";
    sec->desc = "one model across the instances of a consumer group";
    sec->fields = rs_msync_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_msync_fields);
    sec->base = conf;
}

/* ------------------------------------------------------------- state */

typedef struct rs_blob_s {
    _Atomic int refs;
    size_t len;
    uint8_t data[];
} rs_blob_t;

static rs_blob_t *rs_blob_new(const void *p, size_t len) {
    rs_blob_t *b = rs_malloc(sizeof(*b) + (len ? len : 1));
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len) memcpy(b->data, p, len);
    return b;
}

static void rs_blob_release(rs_blob_t *b) {
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) rs_free(b);
}

typedef struct rs_peer_s {
    char instance[RS_COMBINE_ID_MAX];
    char version[RS_VERSION_MAX];
    rs_know_t know;
    rs_blob_t *model;         /* the version's bytes                      */
} rs_peer_t;

struct rs_msync_s {
    rs_msync_conf_t conf;     /* instance and topic resolved              */
    char store_dir[RS_MODEL_PATH_MAX];
    rs_model_conf_t tconf;
    rd_kafka_t *prod, *cons;
    pthread_t thr;
    int running;
    _Atomic int stop;

    pthread_mutex_t lock;     /* peers, stats                             */
    rs_peer_t *peers;         /* [RS_COMBINE_INPUTS - 1]                  */
    int npeers;
    uint64_t peers_gen;       /* +1 per change of peers                   */
    rs_msync_stats_t st;
    char lineage[RS_VERSION_MAX]; /* "<kind>-<8 hex>" of our versions     */
    rs_blob_t *outgoing;      /* our newest message, not yet produced     */

    /* trainer-thread state */
    int started;              /* the first published hook ran             */
    rs_know_t base_know;      /* what T's base version knows              */
    uint64_t base_updates, base_labels, base_obs; /* T's counters then    */
    char pending[RS_VERSION_MAX]; /* version handed to the trainer        */
    rs_know_t pending_know;
    uint32_t pending_flags;
    int pending_ninputs;
    char pending_inputs[RS_COMBINE_INPUTS][RS_VERSION_MAX];
    double pending_weights[RS_COMBINE_INPUTS];
    char own_version[RS_VERSION_MAX];
    rs_know_t own_know;
    rs_blob_t *own_model;     /* bytes of T's newest version              */
    int64_t next_due_us;
    uint64_t combined_gen;    /* peers_gen at the last combination       */
    char combined_own[RS_VERSION_MAX]; /* own version then               */
    rs_know_t scratch_know;   /* (big: off the stack)                     */
};

/* ------------------------------------------------------------ helpers */

/* "<kind>-<8 hex>" of a valid version name into dst. */
static void rs_msync_lineage_of(const char *v, char *dst, size_t size) {
    size_t l = (size_t)(strchr(v, '-') - v) + 9;
    snprintf(dst, size, "%.*s", (int)l, v);
}

/* The id when sync.instance is empty: host name (a-z 0-9 -, at most 11
 * characters) and 4 hex of the store directory, stable across restarts
 * and different for two instances on one host. */
static void rs_msync_default_id(const char *store_dir, char *id, size_t size) {
    char host[256] = "", h[12];
    gethostname(host, sizeof(host) - 1);
    size_t n = 0;
    for (const char *p = host; *p && n < sizeof(h) - 1; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '-';
        if (c == '-' && (n == 0 || h[n - 1] == '-')) continue;
        h[n++] = c;
    }
    while (n && h[n - 1] == '-') n--;
    h[n] = '\0';
    char pre[32];
    snprintf(pre, sizeof(pre), "%s%s", n && strncmp(h, "avg", 3) ? "" : "rs",
             h);
    pre[11] = '\0';
    char v[64];
    snprintf(v, sizeof(v), "%s-%04x", pre,
             (unsigned)(rs_hash64(store_dir, strlen(store_dir)) & 0xffff));
    rs_strlcpy(id, v, size);
}

static void rs_msync_sidecar_path(const rs_msync_t *ms, const char *version,
                                  char *buf, size_t size) {
    snprintf(buf, size, "%s/%s.sync", ms->store_dir, version);
}

/* What the stored `version` knows, from its lineage file.  1 if read. */
static int rs_msync_sidecar_read(rs_msync_t *ms, const char *version,
                                 rs_know_t *know) {
    char path[RS_MODEL_PATH_MAX + RS_VERSION_MAX + 8];
    rs_msync_sidecar_path(ms, version, path, sizeof(path));
    FILE *fp = fopen(path, "rbe");
    if (!fp) return 0;
    uint8_t *buf = rs_malloc(1 << 16);
    size_t len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    rs_combine_msg_t *msg = rs_malloc(sizeof(*msg));
    char e2[256];
    int ok = rs_combine_msg_decode(buf, len, msg, e2, sizeof(e2)) == RS_OK &&
             !strcmp(msg->version, version);
    if (ok) *know = msg->know;
    else rs_warn("sync", "lineage file %s ignored: %s", path,
                 ok ? "" : e2);
    rs_free(msg);
    rs_free(buf);
    return ok;
}

/* Write the lineage file of `version` (atomic: tmp + rename), and drop
 * those whose version the store pruned. */
static void rs_msync_sidecar_write(rs_msync_t *ms, const uint8_t *buf,
                                   size_t len, const char *version) {
    char path[RS_MODEL_PATH_MAX + RS_VERSION_MAX + 8], tmp[sizeof(path) + 4];
    rs_msync_sidecar_path(ms, version, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) ||
        rename(tmp, path)) {
        rs_warn("sync", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    DIR *d = opendir(ms->store_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".sync")) continue;
        char rsm[sizeof(path)];
        /* a name too long for the store's paths is not ours: never act on
         * a truncated path (it could name another file) */
        int w = snprintf(rsm, sizeof(rsm), "%s/%.*s.rsm", ms->store_dir,
                         (int)(l - 5), de->d_name);
        if (w < 0 || (size_t)w >= sizeof(rsm) || access(rsm, F_OK) == 0)
            continue;
        w = snprintf(rsm, sizeof(rsm), "%s/%s", ms->store_dir, de->d_name);
        if (w < 0 || (size_t)w >= sizeof(rsm)) continue;
        unlink(rsm);
    }
    if (d) closedir(d);
}

/* T's counters: updates, labels (updates without replays), observations. */
static void rs_msync_counts(const rs_model_t *t, uint64_t *u, uint64_t *l,
                            uint64_t *o) {
    rs_model_stats_t s;
    rs_model_stats(t, &s);
    *u = s.updates;
    *l = s.updates - s.replays;
    *o = s.observations;
}

/* ------------------------------------------------------ the topic */

static void rs_msync_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                           void *opaque) {
    RS_UNUSED(rk);
    rs_msync_t *ms = opaque;
    pthread_mutex_lock(&ms->lock);
    if (rkm->err) ms->st.publish_errors++;
    else ms->st.published++;
    pthread_mutex_unlock(&ms->lock);
    if (rkm->err)
        rs_error("sync", "version message to %s not delivered: %s",
                 ms->conf.topic, rd_kafka_err2str(rkm->err));
}

/* Create the topic if missing (one partition, compacted).  RS_OK when it
 * exists afterwards. */
static rs_err_t rs_msync_create_topic(rs_msync_t *ms, int timeout_ms) {
    char errstr[512], mmb[32];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(ms->conf.topic, 1, -1,
                                                    errstr, sizeof(errstr));
    if (!nt) {
        rs_warn("sync", "topic %s: %s", ms->conf.topic, errstr);
        return RS_ERR_KAFKA;
    }
    snprintf(mmb, sizeof(mmb), "%lld", (long long)ms->conf.max_bytes);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_NewTopic_set_config(nt, "max.message.bytes", mmb);
    rd_kafka_queue_t *q = rd_kafka_queue_new(ms->prod);
    rd_kafka_AdminOptions_t *opt =
        rd_kafka_AdminOptions_new(ms->prod, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr,
                                              sizeof(errstr));
    rd_kafka_CreateTopics(ms->prod, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    rs_err_t err = RS_ERR_KAFKA;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res =
            rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        if (!e && n == 1) e = rd_kafka_topic_result_error(tr[0]);
        if (!e) {
            rs_info("sync", "model topic %s created (compacted, one "
                    "partition)", ms->conf.topic);
            err = RS_OK;
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            err = RS_OK;
        } else {
            rs_warn("sync", "cannot create the model topic %s: %s (create it "
                    "with cleanup.policy=compact, see docs/model.md)",
                    ms->conf.topic, rd_kafka_err2str(e));
        }
        rd_kafka_event_destroy(ev);
    } else {
        rs_warn("sync", "model topic %s: no answer to CreateTopics within "
                "%d ms", ms->conf.topic, timeout_ms);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return err;
}

/* Assign every partition of the topic from the beginning.  1 if done. */
static int rs_msync_assign(rs_msync_t *ms) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(ms->cons, ms->conf.topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(ms->cons, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    int ok = 0;
    if (!e && md && md->topic_cnt == 1 && !md->topics[0].err &&
        md->topics[0].partition_cnt > 0) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            rd_kafka_topic_partition_list_add(
                l, ms->conf.topic, md->topics[0].partitions[i].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        ok = rd_kafka_assign(ms->cons, l) == RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_topic_partition_list_destroy(l);
        if (ok)
            rs_info("sync", "reading the model topic %s (%d partition%s)",
                    ms->conf.topic, md->topics[0].partition_cnt,
                    md->topics[0].partition_cnt > 1 ? "s" : "");
    }
    if (md) rd_kafka_metadata_destroy(md);
    return ok;
}

/* A message of the topic (sync thread). */
static void rs_msync_receive(rs_msync_t *ms, const rd_kafka_message_t *rkm) {
    static _Atomic int64_t last_warn;
    char e2[256] = "";
    rs_combine_msg_t *msg = rs_malloc(sizeof(*msg));
    rs_err_t err = rs_combine_msg_decode(rkm->payload, rkm->len, msg, e2,
                                         sizeof(e2));
    if (err == RS_OK && (!rkm->key || rkm->key_len != strlen(msg->instance) ||
                         memcmp(rkm->key, msg->instance, rkm->key_len)))
        err = rs_errf(e2, sizeof(e2), RS_ERR_CORRUPT,
                      "model message: the key is not its instance '%s'",
                      msg->instance);
    if (err == RS_OK && !msg->model_len)
        err = rs_errf(e2, sizeof(e2), RS_ERR_CORRUPT,
                      "model message: no model");
    int mine = err == RS_OK && !strcmp(msg->instance, ms->conf.instance);
    pthread_mutex_lock(&ms->lock);
    int lineage_bad = err == RS_OK && ms->lineage[0] &&
                      strncmp(msg->version, ms->lineage, strlen(ms->lineage));
    if (err != RS_OK) ms->st.malformed++;
    else if (lineage_bad && !mine) ms->st.lineage++;
    if (err == RS_OK && !mine && !lineage_bad) {
        int i = 0;
        while (i < ms->npeers && strcmp(ms->peers[i].instance, msg->instance))
            i++;
        if (i == ms->npeers && ms->npeers < RS_COMBINE_INPUTS - 1) {
            memset(&ms->peers[i], 0, sizeof(ms->peers[i]));
            rs_strlcpy(ms->peers[i].instance, msg->instance,
                       sizeof(ms->peers[i].instance));
            ms->npeers++;
        }
        if (i < ms->npeers) {
            rs_peer_t *p = &ms->peers[i];
            rs_blob_release(p->model);
            p->model = rs_blob_new(msg->model, msg->model_len);
            rs_strlcpy(p->version, msg->version, sizeof(p->version));
            p->know = msg->know;
            ms->peers_gen++;
            ms->st.received++;
        }
        ms->st.instances = ms->npeers + 1;
    }
    pthread_mutex_unlock(&ms->lock);
    if (err == RS_OK && !mine && !lineage_bad)
        rs_info("sync", "version %s of instance %s received (%llu labels "
                "learned, from %d origin%s)", msg->version, msg->instance,
                (unsigned long long)rs_know_labels(&msg->know), msg->know.n,
                msg->know.n == 1 ? "" : "s");
    int64_t now = rs_clock_mono_us(), prev = atomic_load(&last_warn);
    if ((err != RS_OK || (lineage_bad && !mine)) && now - prev >= 10000000 &&
        atomic_compare_exchange_strong(&last_warn, &prev, now)) {
        if (err != RS_OK)
            rs_warn("sync", "%s [%d] offset %lld ignored: %s",
                    ms->conf.topic, (int)rkm->partition,
                    (long long)rkm->offset, e2);
        else
            rs_warn("sync", "version %s of instance %s ignored: another "
                    "lineage than %s (kind, architecture, features or "
                    "learning settings differ)", msg->version,
                    msg->instance, ms->lineage);
    }
    rs_free(msg);
}

/* Produce our newest message (sync thread, once the topic is ready). */
static void rs_msync_produce(rs_msync_t *ms) {
    pthread_mutex_lock(&ms->lock);
    rs_blob_t *b = ms->outgoing;
    ms->outgoing = NULL;
    pthread_mutex_unlock(&ms->lock);
    if (!b) return;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        ms->prod, RD_KAFKA_V_TOPIC(ms->conf.topic),
        RD_KAFKA_V_KEY(ms->conf.instance, strlen(ms->conf.instance)),
        RD_KAFKA_V_VALUE(b->data, b->len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e) {
        pthread_mutex_lock(&ms->lock);
        ms->st.publish_errors++;
        pthread_mutex_unlock(&ms->lock);
        rs_error("sync", "version message of %zu bytes not sent to %s: %s "
                 "(sync.max_bytes, the topic's max.message.bytes)", b->len,
                 ms->conf.topic, rd_kafka_err2str(e));
    }
    rs_blob_release(b);
}

/* Hand our newest message to the sync thread (the trainer thread): only
 * the newest matters (the topic is compacted by instance). */
static void rs_msync_send(rs_msync_t *ms, const uint8_t *buf, size_t len) {
    rs_blob_t *b = rs_blob_new(buf, len);
    pthread_mutex_lock(&ms->lock);
    rs_blob_t *old = ms->outgoing;
    ms->outgoing = b;
    pthread_mutex_unlock(&ms->lock);
    rs_blob_release(old);
}

/* Partitions of the topic as `rk` sees it (its metadata request may
 * create the topic where the brokers auto-create: a producer's does). */
static int rs_msync_partitions(rs_msync_t *ms, rd_kafka_t *rk) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, ms->conf.topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    int n = !e && md && md->topic_cnt == 1 && !md->topics[0].err
                ? md->topics[0].partition_cnt
                : 0;
    if (md) rd_kafka_metadata_destroy(md);
    return n;
}

/* The topic, ready to read: exists (the consumer's metadata, which never
 * creates), else CreateTopics (compacted), else -- brokers that refuse or
 * ignore it, like the embedded one -- a producer's metadata request, which
 * auto-creates where allowed.  1 when assigned. */
static int rs_msync_setup(rs_msync_t *ms, int *tried_create) {
    if (rs_msync_partitions(ms, ms->cons) > 0) return rs_msync_assign(ms);
    if (!*tried_create) {
        *tried_create = 1;
        if (rs_msync_create_topic(ms, 3000) == RS_OK) {
            for (int i = 0; i < 20 && !atomic_load(&ms->stop); i++) {
                if (rs_msync_partitions(ms, ms->cons) > 0)
                    return rs_msync_assign(ms);
                struct timespec d = {0, 100000000L};
                nanosleep(&d, NULL);
            }
        }
    }
    if (rs_msync_partitions(ms, ms->prod) > 0 &&
        rs_msync_partitions(ms, ms->cons) > 0) {
        rs_warn("sync", "model topic %s made by the brokers' auto-creation "
                "(not compacted unless they say so: create it with "
                "cleanup.policy=compact on a real cluster)", ms->conf.topic);
        return rs_msync_assign(ms);
    }
    return 0;
}

static void *rs_msync_main(void *arg) {
    rs_msync_t *ms = arg;
    int assigned = 0, tried_create = 0;
    int64_t retry_us = 0, warned_us = 0;
    while (!atomic_load(&ms->stop)) {
        rd_kafka_poll(ms->prod, 0); /* delivery reports */
        int64_t now = rs_clock_mono_us();
        if (!assigned) {
            if (now < retry_us) {
                struct timespec d = {0, 50000000L};
                nanosleep(&d, NULL);
                continue;
            }
            assigned = rs_msync_setup(ms, &tried_create);
            if (!assigned) {
                retry_us = now + 2000000;
                if (now - warned_us >= 30000000) {
                    rs_warn("sync", "model topic %s not available yet: "
                            "retrying", ms->conf.topic);
                    warned_us = now;
                }
            }
            continue;
        }
        rs_msync_produce(ms);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(ms->cons, 100);
        if (!rkm) continue;
        if (!rkm->err) rs_msync_receive(ms, rkm);
        else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            rs_warn("sync", "model topic %s: %s", ms->conf.topic,
                    rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
    }
    if (assigned) rs_msync_produce(ms); /* the last version */
    return NULL;
}

/* ------------------------------------------------------------ hooks */

/* After each publish of the trainer: the version's knowledge, its lineage
 * file, the message. */
static void rs_msync_published(void *opaque, const rs_model_t *t,
                               int stored) {
    rs_msync_t *ms = opaque;
    const char *version = rs_model_version(t);
    uint64_t u, l, o;
    rs_msync_counts(t, &u, &l, &o);
    rs_combine_msg_t *msg = rs_calloc(1, sizeof(*msg));
    rs_know_t *know = &msg->know;
    if (ms->pending[0] && !strcmp(version, ms->pending)) {
        /* a combination or another instance's version, taken as T */
        *know = ms->pending_know;
        msg->flags = ms->pending_flags;
        msg->ninputs = ms->pending_ninputs;
        for (int i = 0; i < msg->ninputs; i++) {
            rs_strlcpy(msg->inputs[i].version, ms->pending_inputs[i],
                       sizeof(msg->inputs[i].version));
            msg->inputs[i].weight = ms->pending_weights[i];
        }
        ms->pending[0] = '\0';
        ms->base_know = *know;
        ms->base_updates = u, ms->base_labels = l, ms->base_obs = o;
    } else if (ms->started && !strcmp(version, ms->own_version)) {
        *know = ms->own_know; /* the same version again */
    } else if (!ms->started || rs_msync_sidecar_read(ms, version, know)) {
        /* the starting model or a rollback: what it knew when it was
         * stored (its lineage file), else -- a model from elsewhere, or
         * stored before the sync -- its learning under its own name
         * (every instance that starts from it shares that origin) */
        if (!ms->started && !rs_msync_sidecar_read(ms, version, know)) {
            rs_know_clear(know);
            if (u) {
                char origin[RS_VERSION_MAX];
                size_t base = strlen(version);
                rs_model_version_parse(version, NULL, &base);
                snprintf(origin, sizeof(origin), "%.*s", (int)base, version);
                rs_know_add(know, origin, u, l, o);
            }
        }
        ms->base_know = *know;
        ms->base_updates = u, ms->base_labels = l, ms->base_obs = o;
    } else {
        /* learned here since the base */
        *know = ms->base_know;
        if (u > ms->base_updates &&
            rs_know_add(know, ms->conf.instance, u - ms->base_updates,
                        l - RS_MIN(l, ms->base_labels),
                        o - RS_MIN(o, ms->base_obs)) != RS_OK)
            rs_error("sync", "version %s: more than %d origins of learning",
                     version, RS_COMBINE_ORIGINS);
    }
    ms->started = 1;
    rs_strlcpy(msg->instance, ms->conf.instance, sizeof(msg->instance));
    rs_strlcpy(msg->version, version, sizeof(msg->version));
    msg->produced_ms = rs_clock_wall_ms();
    uint8_t *mbuf = NULL, *side = NULL, *out = NULL;
    size_t mlen = 0, slen = 0, olen = 0;
    char e2[256];
    rs_model_save_mem(t, &mbuf, &mlen);
    if (rs_combine_msg_encode(msg, &side, &slen, e2, sizeof(e2)) != RS_OK) {
        rs_error("sync", "version %s: %s", version, e2);
    } else {
        if (stored) rs_msync_sidecar_write(ms, side, slen, version);
        msg->model = mbuf;
        msg->model_len = mlen;
        if (rs_combine_msg_encode(msg, &out, &olen, e2, sizeof(e2)) == RS_OK)
            rs_msync_send(ms, out, olen);
    }
    rs_blob_release(ms->own_model);
    ms->own_model = rs_blob_new(mbuf, mlen);
    rs_strlcpy(ms->own_version, version, sizeof(ms->own_version));
    ms->own_know = *know;
    pthread_mutex_lock(&ms->lock);
    if (!ms->lineage[0]) rs_msync_lineage_of(version, ms->lineage,
                                              sizeof(ms->lineage));
    rs_strlcpy(ms->st.version, version, sizeof(ms->st.version));
    ms->st.know_updates = rs_know_updates(know);
    ms->st.know_labels = rs_know_labels(know);
    ms->st.know_origins = know->n;
    pthread_mutex_unlock(&ms->lock);
    rs_free(mbuf);
    rs_free(side);
    rs_free(out);
    rs_free(msg);
}

static int rs_msync_due(void *opaque) {
    rs_msync_t *ms = opaque;
    return ms->started && rs_clock_mono_us() >= ms->next_due_us;
}

static int rs_msync_cmp_peer(const void *a, const void *b) {
    return strcmp(((const rs_peer_t *)a)->instance,
                  ((const rs_peer_t *)b)->instance);
}

/* Every period: plan over the newest versions of all instances, and make
 * the model the trainer continues from (NULL: keep T). */
static rs_model_t *rs_msync_combine(void *opaque, const rs_model_t *t) {
    rs_msync_t *ms = opaque;
    RS_UNUSED(t);
    ms->next_due_us = rs_clock_mono_us() + ms->conf.period_ms * 1000;
    /* the peers as they are now (their bytes referenced) */
    rs_peer_t *ps = rs_calloc(RS_COMBINE_INPUTS, sizeof(*ps));
    pthread_mutex_lock(&ms->lock);
    uint64_t gen = ms->peers_gen;
    int np = 0;
    for (int i = 0; i < ms->npeers; i++) {
        /* (versions read before ours was known were not checked yet) */
        if (strncmp(ms->peers[i].version, ms->lineage, strlen(ms->lineage)))
            continue;
        ps[np] = ms->peers[i];
        atomic_fetch_add(&ps[np++].model->refs, 1);
    }
    pthread_mutex_unlock(&ms->lock);
    rs_model_t *res = NULL;
    rs_model_t **models = NULL;
    if (np == 0 || (gen == ms->combined_gen &&
                    !strcmp(ms->combined_own, ms->own_version)))
        goto done; /* nothing new since the last time */
    ms->combined_gen = gen;
    rs_strlcpy(ms->combined_own, ms->own_version, sizeof(ms->combined_own));
    /* ourselves among them, in instance order */
    rs_peer_t *self = &ps[np];
    rs_strlcpy(self->instance, ms->conf.instance, sizeof(self->instance));
    rs_strlcpy(self->version, ms->own_version, sizeof(self->version));
    self->know = ms->own_know;
    self->model = ms->own_model;
    atomic_fetch_add(&self->model->refs, 1);
    int n = np + 1;
    np = n; /* every entry of ps holds a reference from here on */
    qsort(ps, (size_t)n, sizeof(*ps), rs_msync_cmp_peer);
    rs_combine_input_t in[RS_COMBINE_INPUTS];
    int me = 0;
    for (int i = 0; i < n; i++) {
        in[i] = (rs_combine_input_t){ps[i].instance, ps[i].version,
                                     &ps[i].know};
        if (!strcmp(ps[i].instance, ms->conf.instance)) me = i;
    }
    rs_combine_plan_t *plan = rs_malloc(sizeof(*plan));
    char e2[512];
    rs_err_t err = rs_combine_plan(in, n, me, plan, e2, sizeof(e2));
    if (err != RS_OK || plan->action == RS_COMBINE_NONE) {
        if (err != RS_OK) {
            rs_error("sync", "%s", e2);
            pthread_mutex_lock(&ms->lock);
            ms->st.combine_errors++;
            pthread_mutex_unlock(&ms->lock);
        }
        rs_free(plan);
        goto done;
    }
    models = rs_calloc((size_t)n, sizeof(*models));
    for (int i = 0; i < n && err == RS_OK; i++) {
        int use = plan->action == RS_COMBINE_ADOPT
                      ? i == plan->pick
                      : (plan->w[i] > 0 || plan->k[i] > 0);
        if (!use) continue;
        err = rs_model_load_mem(ps[i].model->data, ps[i].model->len,
                                ps[i].version, &ms->tconf, &models[i], e2,
                                sizeof(e2));
        if (err == RS_OK) {
            size_t base = 0;
            rs_model_version_parse(ps[i].version, NULL, &base);
            if (ps[i].version[base])
                rs_model_set_version_tag(models[i], ps[i].version + base + 1);
            if (strcmp(rs_model_version(models[i]), ps[i].version))
                err = rs_errf(e2, sizeof(e2), RS_ERR_CORRUPT,
                              "the message of %s holds version %s",
                              ps[i].version, rs_model_version(models[i]));
        }
        if (err != RS_OK) {
            rs_error("sync", "version %s of instance %s: %s", ps[i].version,
                     ps[i].instance, e2);
            pthread_mutex_lock(&ms->lock);
            ms->st.malformed++;
            pthread_mutex_unlock(&ms->lock);
        }
    }
    if (err == RS_OK && plan->action == RS_COMBINE_ADOPT) {
        res = models[plan->pick];
        models[plan->pick] = NULL;
        rs_strlcpy(ms->pending, plan->action == RS_COMBINE_ADOPT
                                    ? ps[plan->pick].version
                                    : plan->version,
                   sizeof(ms->pending));
        ms->pending_know = ps[plan->pick].know;
        ms->pending_flags = RS_COMBINE_MSG_ADOPTED;
        ms->pending_ninputs = 0;
        rs_info("sync", "adopting version %s of instance %s: it knows all "
                "the others learned (%llu labels)", ps[plan->pick].version,
                ps[plan->pick].instance,
                (unsigned long long)rs_know_labels(&ps[plan->pick].know));
    } else if (err == RS_OK) {
        err = rs_combine_models(models, plan, &ms->tconf, &res, e2,
                                sizeof(e2));
        if (err == RS_OK) {
            rs_strlcpy(ms->pending, plan->version, sizeof(ms->pending));
            ms->pending_know = plan->know;
            ms->pending_flags = RS_COMBINE_MSG_COMBINED;
            double W = 0;
            int c = 0;
            for (int i = 0; i < n; i++) W += plan->w[i];
            for (int i = 0; i < n; i++) {
                if (!(plan->w[i] > 0 || plan->k[i] > 0)) continue;
                rs_strlcpy(ms->pending_inputs[c], ps[i].version,
                           sizeof(ms->pending_inputs[c]));
                ms->pending_weights[c++] =
                    W > 0 ? plan->w[i] / W : 1.0 / plan->navg;
            }
            ms->pending_ninputs = c;
            char line[1024];
            size_t off = 0;
            for (int i = 0; i < c && off < sizeof(line) - 80; i++)
                off += (size_t)snprintf(line + off, sizeof(line) - off,
                                        "%s%s (%.3f)", i ? ", " : "",
                                        ms->pending_inputs[i],
                                        ms->pending_weights[i]);
            rs_info("sync", "combined version %s = weighted average of %s; "
                    "it knows %llu labels from %d origins", plan->version,
                    line, (unsigned long long)rs_know_labels(&plan->know),
                    plan->know.n);
        } else {
            rs_error("sync", "%s", e2);
            pthread_mutex_lock(&ms->lock);
            ms->st.combine_errors++;
            pthread_mutex_unlock(&ms->lock);
        }
    }
    if (res) {
        pthread_mutex_lock(&ms->lock);
        if (plan->action == RS_COMBINE_ADOPT) ms->st.adoptions++;
        else ms->st.combines++;
        ms->st.last_combine_ms = rs_clock_wall_ms();
        pthread_mutex_unlock(&ms->lock);
    }
    for (int i = 0; i < n; i++) rs_model_destroy(models[i]);
    rs_free(plan);
done:
    for (int i = 0; i < np; i++) rs_blob_release(ps[i].model);
    rs_free(models);
    rs_free(ps);
    return res;
}

/* ------------------------------------------------------------ public */

rs_msync_t *rs_msync_new(const rs_msync_conf_t *conf, const rs_kv_t *kafka,
                         const char *bootstrap, const char *group,
                         const char *store_dir, const rs_model_conf_t *tconf,
                         rs_err_t *err_out, char *errstr, size_t errstr_size) {
    rs_msync_t *ms = rs_calloc(1, sizeof(*ms));
    rs_err_t err = RS_OK;
    rd_kafka_conf_t *kc = NULL;
    ms->conf = *conf;
    rs_strlcpy(ms->store_dir, store_dir, sizeof(ms->store_dir));
    ms->tconf = *tconf;
    pthread_mutex_init(&ms->lock, NULL);
    ms->peers = rs_calloc(RS_COMBINE_INPUTS, sizeof(*ms->peers));
    if (!ms->conf.instance[0])
        rs_msync_default_id(store_dir, ms->conf.instance,
                            sizeof(ms->conf.instance));
    if (!rs_combine_id_valid(ms->conf.instance)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "sync.instance '%s': want 1 to %d of a-z 0-9 and -, "
                      "not starting with - or avg", ms->conf.instance,
                      RS_MODEL_TAG_MAX);
        goto fail;
    }
    if (!ms->conf.topic[0])
        snprintf(ms->conf.topic, sizeof(ms->conf.topic), "%s-models", group);
    ms->st.instances = 1;
    char mmb[32], rmb[32];
    snprintf(mmb, sizeof(mmb), "%lld", (long long)conf->max_bytes + 65536);
    snprintf(rmb, sizeof(rmb), "%lld", (long long)conf->max_bytes + 131072);
    const char *const pdef[][2] = {{"message.max.bytes", mmb},
                                   {"linger.ms", "0"}};
    if ((err = rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, kafka, bootstrap,
                                       pdef, 2, &kc, errstr, errstr_size)))
        goto fail;
    rd_kafka_conf_set_opaque(kc, ms);
    rd_kafka_conf_set_dr_msg_cb(kc, rs_msync_dr_cb);
    char e2[512];
    if (!(ms->prod = rd_kafka_new(RD_KAFKA_PRODUCER, kc, e2, sizeof(e2)))) {
        rd_kafka_conf_destroy(kc);
        err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                      "sync: model topic producer: %s", e2);
        goto fail;
    }
    /* assign(), never subscribe: the consumer reads every partition from
     * the beginning and joins no group (librdkafka needs a group.id for
     * assign; nothing is committed under it) */
    char gid[300];
    snprintf(gid, sizeof(gid), "%s-reader-%s", ms->conf.topic,
             ms->conf.instance);
    const char *const cdef[][2] = {{"group.id", gid},
                                   {"enable.auto.commit", "false"},
                                   {"auto.offset.reset", "earliest"},
                                   {"fetch.max.bytes", mmb},
                                   {"receive.message.max.bytes", rmb},
                                   {"max.partition.fetch.bytes", mmb},
                                   {"fetch.wait.max.ms", "100"}};
    kc = NULL;
    rs_kv_t props;
    rs_kv_init(&props);
    /* the service's group.id must not make this reader a group member */
    for (int i = 0; kafka && i < kafka->cnt; i++)
        if (strcmp(kafka->keys[i], "group.id") &&
            strcmp(kafka->keys[i], "consumer.group.id"))
            rs_kv_set(&props, kafka->keys[i], kafka->vals[i]);
    err = rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, &props, bootstrap, cdef,
                                  (int)RS_ARRAY_LEN(cdef), &kc, errstr,
                                  errstr_size);
    rs_kv_free(&props);
    if (err) goto fail;
    if (!(ms->cons = rd_kafka_new(RD_KAFKA_CONSUMER, kc, e2, sizeof(e2)))) {
        rd_kafka_conf_destroy(kc);
        err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                      "sync: model topic consumer: %s", e2);
        goto fail;
    }
    rd_kafka_poll_set_consumer(ms->cons);
    if (pthread_create(&ms->thr, NULL, rs_msync_main, ms)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                      "sync: cannot start its thread");
        goto fail;
    }
    ms->running = 1;
    ms->next_due_us = rs_clock_mono_us() + ms->conf.period_ms * 1000;
    rs_info("sync", "instance %s: versions to %s, combined every %lld ms",
            ms->conf.instance, ms->conf.topic, (long long)ms->conf.period_ms);
    if (err_out) *err_out = RS_OK;
    return ms;
fail:
    if (err_out) *err_out = err;
    rs_msync_destroy(ms);
    return NULL;
}

void rs_msync_hooks(rs_msync_t *ms, rs_trainer_hooks_t *h) {
    memset(h, 0, sizeof(*h));
    h->opaque = ms;
    rs_strlcpy(h->tag, ms->conf.instance, sizeof(h->tag));
    h->published = rs_msync_published;
    h->due = rs_msync_due;
    h->combine = rs_msync_combine;
}

const char *rs_msync_instance(const rs_msync_t *ms) {
    return ms->conf.instance;
}

void rs_msync_stats(rs_msync_t *ms, rs_msync_stats_t *st) {
    pthread_mutex_lock(&ms->lock);
    *st = ms->st;
    pthread_mutex_unlock(&ms->lock);
}

void rs_msync_metrics(rs_msync_t *ms, rs_http_buf_t *b) {
    rs_msync_stats_t st;
    rs_msync_stats(ms, &st);
    static const struct {
        const char *name, *help;
        size_t off;
    } ctr[] = {
        {"versions_received_total", "valid versions of other instances read "
         "from the model topic", offsetof(rs_msync_stats_t, received)},
        {"versions_published_total", "versions of this instance delivered to "
         "the model topic", offsetof(rs_msync_stats_t, published)},
        {"publish_errors_total", "versions that could not be delivered",
         offsetof(rs_msync_stats_t, publish_errors)},
        {"combines_total", "combined versions (weighted averages) learned "
         "from", offsetof(rs_msync_stats_t, combines)},
        {"adoptions_total", "other instances' versions taken as they were "
         "(they knew everything)", offsetof(rs_msync_stats_t, adoptions)},
        {"combine_errors_total", "combinations that failed",
         offsetof(rs_msync_stats_t, combine_errors)},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(ctr); i++)
        rs_http_buf_printf(b, "# HELP riskstream_model_sync_%s %s\n# TYPE "
                           "riskstream_model_sync_%s counter\n"
                           "riskstream_model_sync_%s %llu\n",
                           ctr[i].name, ctr[i].help, ctr[i].name, ctr[i].name,
                           (unsigned long long)*(const uint64_t *)(
                               (const char *)&st + ctr[i].off));
    rs_http_buf_printf(
        b, "# HELP riskstream_model_sync_rejected_total model messages "
           "ignored\n# TYPE riskstream_model_sync_rejected_total counter\n"
           "riskstream_model_sync_rejected_total{reason=\"malformed\"} %llu\n"
           "riskstream_model_sync_rejected_total{reason=\"lineage\"} %llu\n",
        (unsigned long long)st.malformed, (unsigned long long)st.lineage);
    rs_http_buf_printf(
        b, "# HELP riskstream_model_sync_instances instances seen on the "
           "model topic, this one included\n# TYPE "
           "riskstream_model_sync_instances gauge\n"
           "riskstream_model_sync_instances %d\n", st.instances);
    rs_http_buf_printf(
        b, "# HELP riskstream_model_sync_last_combine_age_seconds time since "
           "the last combination or adoption (-1: none yet)\n# TYPE "
           "riskstream_model_sync_last_combine_age_seconds gauge\n"
           "riskstream_model_sync_last_combine_age_seconds %.3f\n",
        st.last_combine_ms ? (double)(rs_clock_wall_ms() -
                                      st.last_combine_ms) / 1000.0
                           : -1.0);
    rs_http_buf_printf(
        b, "# HELP riskstream_model_sync_knowledge what the trainer's newest "
           "version learned, all instances together\n# TYPE "
           "riskstream_model_sync_knowledge gauge\n"
           "riskstream_model_sync_knowledge{what=\"updates\"} %llu\n"
           "riskstream_model_sync_knowledge{what=\"labels\"} %llu\n"
           "riskstream_model_sync_knowledge{what=\"origins\"} %d\n",
        (unsigned long long)st.know_updates,
        (unsigned long long)st.know_labels, st.know_origins);
}

void rs_msync_destroy(rs_msync_t *ms) {
    if (!ms) return;
    if (ms->running) {
        atomic_store(&ms->stop, 1);
        pthread_join(ms->thr, NULL);
    }
    if (ms->prod) rd_kafka_flush(ms->prod, 10000);
    rs_blob_release(ms->outgoing);
    if (ms->cons) {
        rd_kafka_consumer_close(ms->cons);
        rd_kafka_destroy(ms->cons);
    }
    if (ms->prod) rd_kafka_destroy(ms->prod);
    for (int i = 0; i < ms->npeers; i++) rs_blob_release(ms->peers[i].model);
    rs_free(ms->peers);
    rs_blob_release(ms->own_model);
    pthread_mutex_destroy(&ms->lock);
    rs_free(ms);
}
