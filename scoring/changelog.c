/* changelog.c -- the state changelog topic (changelog.h).
 *
 * Invariants
 * - Staged frames are produced in staging order, a batch's after the
 *   batches before it, and only once the batch is retired.
 * - A batch's marker follows its records in each partition (one producer,
 *   idempotent: per-partition order is kept across retries).
 * - The restore applies a batch's records only when their marker is read.
 * - Exactly-once (rs_changelog_use_txn): frames are produced only into an
 *   open transaction of the sink's producer, before its commit; frames of
 *   batches whose transaction is discarded are dropped unproduced.
 */
#include "scoring/changelog.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest_int.h"
#include "scoring/parts.h"

/* Frame in the staging FIFO: u64 seq | u32 partition | u32 klen | u32 vlen
 * | key | value. */
#define RS_CL_FRAME_HDR 20

struct rs_changelog_s {
    rd_kafka_t *prod;
    rd_kafka_topic_t *rkt;
    char topic[256];
    char bootstrap[512];
    const rs_kv_t *kafka;       /* borrowed (the app's)                  */
    rd_kafka_t *cons;           /* restore consumer (lazy)               */
    rs_features_t *feat;
    rs_model_t *model;
    rs_dedup_t *dedup;
    rs_pstate_t *ps;
    uint8_t *stage;             /* [stage_cap] frames                    */
    size_t stage_cap, head, tail;
    uint8_t *val;               /* [val_cap] a record value being built  */
    size_t val_cap;
    uint64_t *eset;             /* [emask + 1] entity hashes of a batch  */
    uint32_t emask;
    int64_t *end;               /* [RS_PARTS_MAX] next offset after the last
                                 * acknowledged record; -1 none         */
    int64_t inflight;           /* produced, not acknowledged            */
    _Atomic uint64_t records, bytes, failed, restored;
    _Atomic int64_t staged_bytes;
    rs_sink_kafka_t *ks;        /* exactly-once: the transactional sink
                                 * (borrowed); NULL: own producer         */
    int (*foreign)(void *o, int32_t p); /* tombstones not ours to write */
    void *foreign_o;
};

void rs_changelog_set_foreign(rs_changelog_t *cl,
                              int (*foreign)(void *o, int32_t partition),
                              void *o) {
    cl->foreign = foreign;
    cl->foreign_o = o;
}

/* A tombstone of partition p may be written here (not a standby copy's:
 * its owner writes those -- an entity of a copy that expires or is
 * evicted HERE must not delete the owner's live record). */
static int rs_cl_tomb_ok(const rs_changelog_t *cl, int32_t p) {
    return p >= 0 && (!cl->foreign || !cl->foreign(cl->foreign_o, p));
}

static void rs_cl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque) {
    rs_changelog_t *cl = opaque;
    (void)rk;
    cl->inflight--;
    if (rkm->err) {
        atomic_fetch_add(&cl->failed, 1);
        rs_error("changelog", "a record of %s/%d was not written: %s (the "
                 "changelog of that partition misses it until the entity "
                 "changes again)", cl->topic, (int)rkm->partition,
                 rd_kafka_err2str(rkm->err));
        return;
    }
    if (rkm->partition >= 0 && rkm->partition < RS_PARTS_MAX &&
        rkm->offset + 1 > cl->end[rkm->partition])
        cl->end[rkm->partition] = rkm->offset + 1;
}

rs_changelog_t *rs_changelog_new(const rs_kv_t *kafka, const char *bootstrap,
                                 const char *topic, rs_features_t *feat,
                                 rs_model_t *model, rs_dedup_t *dedup,
                                 rs_pstate_t *ps, int batch_max, char *errstr,
                                 size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"compression.type", "lz4"},
    };
    rd_kafka_conf_t *conf = NULL;
    char kerr[512];
    rs_changelog_t *cl = rs_calloc(1, sizeof(*cl));
    rs_strlcpy(cl->topic, topic, sizeof(cl->topic));
    rs_strlcpy(cl->bootstrap, bootstrap ? bootstrap : "", sizeof(cl->bootstrap));
    cl->kafka = kafka;
    cl->feat = feat;
    cl->model = model;
    cl->dedup = dedup;
    cl->ps = ps;
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, kafka, bootstrap, defaults,
                                (int)RS_ARRAY_LEN(defaults), &conf, errstr,
                                errstr_size) != RS_OK)
        goto fail;
    rd_kafka_conf_set_opaque(conf, cl);
    rd_kafka_conf_set_dr_msg_cb(conf, rs_cl_dr_cb);
    cl->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!cl->prod) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "changelog producer: %s",
                kerr);
        goto fail;
    }
    conf = NULL;
    cl->rkt = rd_kafka_topic_new(cl->prod, topic, NULL);
    uint32_t m = 64;
    while (m < 4u * (uint32_t)(batch_max > 0 ? batch_max : 1)) m <<= 1;
    cl->emask = m - 1;
    cl->eset = rs_calloc(m, sizeof(*cl->eset));
    cl->end = rs_calloc(RS_PARTS_MAX, sizeof(*cl->end));
    for (int i = 0; i < RS_PARTS_MAX; i++) cl->end[i] = -1;
    rs_features_track_gone(feat, (uint32_t)(4 * (batch_max > 0 ? batch_max : 1)));
    if (model) /* at most one eviction per event */
        rs_model_caches_track_gone(
            model, (uint32_t)(4 * (batch_max > 0 ? batch_max : 1)));
    if (dedup)
        rs_dedup_track_gone(dedup,
                            (uint32_t)(4 * (batch_max > 0 ? batch_max : 1)));
    if (rs_pstate_alerts(ps)) /* idle machines' 'A' tombstones */
        rs_alerts_track_gone(rs_pstate_alerts(ps), 1);
    return cl;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    rs_changelog_destroy(cl);
    return NULL;
}

void rs_changelog_destroy(rs_changelog_t *cl) {
    if (!cl) return;
    if (cl->ks) rs_sink_kafka_txn_topic(cl->ks, cl->topic, NULL, NULL);
    if (cl->feat) rs_features_track_gone(cl->feat, 0);
    if (cl->ps && rs_pstate_alerts(cl->ps))
        rs_alerts_track_gone(rs_pstate_alerts(cl->ps), 0);
    if (cl->model) rs_model_caches_track_gone(cl->model, 0);
    if (cl->dedup) rs_dedup_track_gone(cl->dedup, 0);
    if (cl->prod) {
        rd_kafka_flush(cl->prod, 10000);
        if (cl->rkt) rd_kafka_topic_destroy(cl->rkt);
        rd_kafka_destroy(cl->prod);
    }
    if (cl->cons) {
        rd_kafka_consumer_close(cl->cons);
        rd_kafka_destroy(cl->cons);
    }
    free(cl->stage);
    free(cl->val);
    free(cl->eset);
    free(cl->end);
    free(cl);
}

/* ------------------------------------------------------------ topic */

int rs_changelog_on_mock(rs_changelog_t *cl, int timeout_ms) {
    char *id = rd_kafka_clusterid(cl->prod, timeout_ms);
    if (!id) return -1;
    int mock = !strncmp(id, "mockCluster", 11);
    rd_kafka_mem_free(cl->prod, id);
    return mock;
}

rs_err_t rs_changelog_ensure(rs_changelog_t *cl, const char *input_topic,
                             int timeout_ms, char *errstr,
                             size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    int pin = -1, pcl = -1, created = 0;
    for (;;) {
        kerr = rd_kafka_metadata(cl->prod, 1, NULL, &md, 5000);
        pin = pcl = -1;
        for (int i = 0; !kerr && i < md->topic_cnt; i++) {
            const rd_kafka_metadata_topic_t *t = &md->topics[i];
            if (t->err) continue;
            if (!strcmp(t->topic, input_topic)) pin = t->partition_cnt;
            if (!strcmp(t->topic, cl->topic)) pcl = t->partition_cnt;
        }
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        if (pin > 0 && (pcl > 0 || created)) {
            if (pcl > 0) break;
        }
        if (pin > 0 && pcl < 0 && !created) {
            /* create it: the input's partition count, compacted */
            char e2[512];
            rd_kafka_NewTopic_t *nt =
                rd_kafka_NewTopic_new(cl->topic, pin, -1, e2, sizeof(e2));
            if (nt) {
                rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
                rd_kafka_queue_t *q = rd_kafka_queue_new(cl->prod);
                rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(
                    cl->prod, RD_KAFKA_ADMIN_OP_CREATETOPICS);
                rd_kafka_AdminOptions_set_request_timeout(o, 10000, NULL, 0);
                rd_kafka_CreateTopics(cl->prod, &nt, 1, o, q);
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
                const char *why = "no answer";
                rd_kafka_resp_err_t cerr = RD_KAFKA_RESP_ERR__TIMED_OUT;
                if (ev) {
                    cerr = rd_kafka_event_error(ev);
                    why = rd_kafka_event_error_string(ev);
                    const rd_kafka_CreateTopics_result_t *res =
                        rd_kafka_event_CreateTopics_result(ev);
                    size_t nres = 0;
                    const rd_kafka_topic_result_t **tr =
                        res ? rd_kafka_CreateTopics_result_topics(res, &nres)
                            : NULL;
                    if (!cerr && nres == 1) {
                        cerr = rd_kafka_topic_result_error(tr[0]);
                        why = rd_kafka_topic_result_error_string(tr[0]);
                    }
                }
                if (!cerr || cerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                    rs_info("changelog", "created %s: %d partitions, "
                            "cleanup.policy=compact", cl->topic, pin);
                else
                    rs_warn("changelog", "cannot create %s: %s", cl->topic,
                            why ? why : rd_kafka_err2str(cerr));
                if (ev) rd_kafka_event_destroy(ev);
                rd_kafka_AdminOptions_destroy(o);
                rd_kafka_queue_destroy(q);
                rd_kafka_NewTopic_destroy(nt);
            }
            created = 1;
            continue;
        }
        if (rs_clock_mono_us() > deadline) break;
        usleep(500000);
    }
    if (pin <= 0)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "changelog: input topic '%s' not found (%s)",
                       input_topic, kerr ? rd_kafka_err2str(kerr)
                                         : "not in the metadata");
    if (pcl <= 0)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "changelog topic '%s' does not exist and could not be "
                       "created; create it (kafka-topics.sh --create --topic "
                       "%s --partitions %d --config cleanup.policy=compact) or "
                       "set state.changelog: false", cl->topic, cl->topic,
                       pin);
    if (pcl != pin)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "changelog topic '%s' has %d partitions, the input "
                       "topic '%s' %d: they must match (changelog partition N "
                       "holds the state of input partition N)", cl->topic, pcl,
                       input_topic, pin);
    return RS_OK;
}

/* ------------------------------------------------------------ staging */

static void rs_cl_reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 65536;
    while (c < need) c *= 2;
    *buf = rs_realloc(*buf, c);
    *cap = c;
}

static void rs_cl_frame(rs_changelog_t *cl, uint64_t seq, char store,
                        int32_t partition, uint64_t id, const void *val,
                        size_t vlen) {
    uint8_t key[RS_PSTATE_KEY_LEN];
    rs_pstate_key_encode(key, store, partition, id);
    size_t need = RS_CL_FRAME_HDR + sizeof(key) + vlen;
    if (cl->head == cl->tail) cl->head = cl->tail = 0; /* empty: rewind */
    rs_cl_reserve(&cl->stage, &cl->stage_cap, cl->tail + need);
    uint8_t *f = cl->stage + cl->tail;
    uint32_t kl = sizeof(key), vl = (uint32_t)vlen, p = (uint32_t)partition;
    memcpy(f, &seq, 8);
    memcpy(f + 8, &p, 4);
    memcpy(f + 12, &kl, 4);
    memcpy(f + 16, &vl, 4);
    memcpy(f + RS_CL_FRAME_HDR, key, sizeof(key));
    if (vlen) memcpy(f + RS_CL_FRAME_HDR + sizeof(key), val, vlen);
    cl->tail += need;
    atomic_fetch_add(&cl->staged_bytes, (int64_t)need);
}

/* 1 if entity hash h was already staged in this batch (else remembers it). */
static int rs_cl_seen(rs_changelog_t *cl, uint64_t h) {
    h |= 1;
    uint32_t i = (uint32_t)h & cl->emask;
    while (cl->eset[i]) {
        if (cl->eset[i] == h) return 1;
        i = (i + 1) & cl->emask;
    }
    cl->eset[i] = h;
    return 0;
}

typedef rs_err_t (*rs_cl_write_fn)(const void *obj, const char *id,
                                   void *buf, size_t cap, size_t *len);

static rs_err_t rs_cl_w_ent(const void *f, const char *id, void *b, size_t c,
                            size_t *l) {
    return rs_features_entity_write(f, id, b, c, l);
}
static rs_err_t rs_cl_w_ev(const void *f, const char *id, void *b, size_t c,
                           size_t *l) {
    return rs_features_event_write(f, id, b, c, l);
}
static rs_err_t rs_cl_w_cache(const void *m, const char *id, void *b,
                              size_t c, size_t *l) {
    return rs_model_caches_write_entity(m, id, b, c, l);
}

static rs_err_t rs_cl_w_maint(const void *al, const char *id, void *b,
                              size_t c, size_t *l) {
    size_t n = rs_alerts_machine_write(al, id, b, c);
    if (!n) return RS_ERR_NOTFOUND; /* not a machine seen here */
    *l = n;
    return n > c ? RS_ERR_TOOBIG : RS_OK;
}

/* Stage the record `store` of `id` written by fn (skipped if none). */
static void rs_cl_stage_one(rs_changelog_t *cl, uint64_t seq, char store,
                            int32_t p, const char *id, uint64_t idh,
                            rs_cl_write_fn fn, const void *obj) {
    size_t len = 0;
    rs_err_t err = fn(obj, id, cl->val, cl->val_cap, &len);
    if (err == RS_ERR_TOOBIG) {
        rs_cl_reserve(&cl->val, &cl->val_cap, len);
        err = fn(obj, id, cl->val, cl->val_cap, &len);
    }
    if (err == RS_OK) rs_cl_frame(cl, seq, store, p, idh, cl->val, len);
}

/* The batch as an array (msgs) or as pointers (refs). */
static void rs_cl_stage(rs_changelog_t *cl, uint64_t seq, const rs_msg_t *msgs,
                        const rs_msg_t *const *refs, int n,
                        void (*pos)(void *opaque, int32_t partition,
                                    rs_pstate_pos_t *p),
                        void *opaque) {
    int32_t parts[64];
    int np = 0, many = 0;
    rs_alerts_t *al = rs_pstate_alerts(cl->ps);
    memset(cl->eset, 0, ((size_t)cl->emask + 1) * sizeof(*cl->eset));
    /* Entities whose feature slot expired (key_ttl) or was evicted,
     * sequence caches the LRU evicted and idle machines' maintenance
     * state: tombstones FIRST, so that an
     * entity back in this same batch gets its new record after its
     * tombstone (issue 13: a restore must not resurrect them). */
    {
        const uint64_t *keys;
        const int32_t *kp;
        uint64_t lost = 0, lost2 = 0;
        int ng = rs_features_ents_gone_take(cl->feat, &keys, &kp, &lost);
        for (int i = 0; i < ng; i++)
            if (rs_cl_tomb_ok(cl, kp[i]) && kp[i] < RS_PARTS_MAX)
                rs_cl_frame(cl, seq, 'F', kp[i], keys[i] ? keys[i] : 1, NULL,
                            0);
        ng = cl->model ? rs_model_caches_gone_take(cl->model, &keys, &kp,
                                                   &lost2)
                       : 0;
        for (int i = 0; i < ng; i++)
            if (rs_cl_tomb_ok(cl, kp[i]) && kp[i] < RS_PARTS_MAX)
                rs_cl_frame(cl, seq, 'S', kp[i], keys[i] ? keys[i] : 1, NULL,
                            0);
        /* machines the maintenance forgot as idle (alerts.h) */
        uint64_t lost3 = 0;
        ng = al ? rs_alerts_gone_take(al, &keys, &kp, &lost3) : 0;
        for (int i = 0; i < ng; i++)
            if (rs_cl_tomb_ok(cl, kp[i]) && kp[i] < RS_PARTS_MAX)
                rs_cl_frame(cl, seq, 'A', kp[i], keys[i] ? keys[i] : 1, NULL,
                            0);
        if (lost + lost2 + lost3)
            rs_warn("changelog", "%llu expired or evicted entities got no "
                    "tombstone (more than the tracking holds per batch): a "
                    "restore from the changelog may bring them back",
                    (unsigned long long)(lost + lost2 + lost3));
    }
    for (int i = 0; i < n; i++) {
        const rs_msg_t *m = refs ? refs[i] : &msgs[i];
        int32_t p = m->partition;
        if (p < 0 || p >= RS_PARTS_MAX) continue;
        int have = 0;
        for (int k = 0; k < np && !have; k++) have = parts[k] == p;
        if (!have) {
            if (np < (int)RS_ARRAY_LEN(parts)) parts[np++] = p;
            else many = 1;
        }
        const char *ent = m->kind == RS_MSG_EVENT   ? m->ev.entity_id
                          : m->kind == RS_MSG_LABEL ? m->lb.entity_id
                                                    : NULL;
        const char *evid = m->kind == RS_MSG_EVENT   ? m->ev.id
                           : m->kind == RS_MSG_LABEL ? m->lb.event_id
                                                     : NULL;
        if (!ent) continue;
        uint64_t eh = rs_hash_str(ent);
        if (!rs_cl_seen(cl, eh)) {
            rs_cl_stage_one(cl, seq, 'F', p, ent, eh ? eh : 1, rs_cl_w_ent,
                            cl->feat);
            rs_cl_stage_one(cl, seq, 'S', p, ent, eh ? eh : 1, rs_cl_w_cache,
                            cl->model);
            if (al) /* the machine's maintenance state (pstate.h 'A') */
                rs_cl_stage_one(cl, seq, 'A', p, ent, eh ? eh : 1,
                                rs_cl_w_maint, al);
        }
        uint64_t vh = rs_hash_str(evid);
        rs_cl_stage_one(cl, seq, 'I', p, evid, vh ? vh : 1, rs_cl_w_ev,
                        cl->feat);
        if (m->kind == RS_MSG_EVENT && cl->dedup) {
            uint64_t dk = rs_dedup_key(m->ev.entity_id, m->ev.id);
            size_t len = 0;
            rs_err_t err = rs_dedup_write_key(cl->dedup, dk, cl->val,
                                              cl->val_cap, &len);
            if (err == RS_ERR_TOOBIG) {
                rs_cl_reserve(&cl->val, &cl->val_cap, len);
                err = rs_dedup_write_key(cl->dedup, dk, cl->val, cl->val_cap,
                                         &len);
            }
            if (err == RS_OK && dk)
                rs_cl_frame(cl, seq, 'D', p, dk, cl->val, len);
        }
    }
    /* machines a maintenance report changed in this batch (applied when
     * their partition reached its label time, maybe without a message of
     * theirs here): their feature slot (a new life), cache and
     * maintenance state (pstate.h 'A') */
    if (al) {
        const rs_alerts_dirty_t *dm;
        uint64_t dlost = 0;
        int nd = rs_alerts_dirty_take(al, &dm, &dlost);
        for (int i = 0; i < nd; i++) {
            int32_t p = dm[i].partition;
            uint64_t eh = rs_hash_str(dm[i].machine);
            if (p < 0 || p >= RS_PARTS_MAX || rs_cl_seen(cl, eh)) continue;
            rs_cl_stage_one(cl, seq, 'F', p, dm[i].machine, eh ? eh : 1,
                            rs_cl_w_ent, cl->feat);
            rs_cl_stage_one(cl, seq, 'S', p, dm[i].machine, eh ? eh : 1,
                            rs_cl_w_cache, cl->model);
            rs_cl_stage_one(cl, seq, 'A', p, dm[i].machine, eh ? eh : 1,
                            rs_cl_w_maint, al);
        }
        if (dlost)
            rs_warn("changelog", "%llu machines changed by maintenance "
                    "reports got no record in this batch (more than the "
                    "list holds)", (unsigned long long)dlost);
    }
    /* what left the index and the duplicate window: tombstones */
    const uint64_t *ids;
    const int32_t *gp;
    int ng = rs_features_gone_take(cl->feat, &ids, &gp, NULL);
    for (int i = 0; i < ng; i++)
        if (rs_cl_tomb_ok(cl, gp[i]) && ids[i])
            rs_cl_frame(cl, seq, 'I', gp[i], ids[i], NULL, 0);
    if (cl->dedup) {
        ng = rs_dedup_gone_take(cl->dedup, &ids, &gp);
        for (int i = 0; i < ng; i++)
            if (rs_cl_tomb_ok(cl, gp[i]) && ids[i])
                rs_cl_frame(cl, seq, 'D', gp[i], ids[i], NULL, 0);
    }
    if (many) rs_warn("changelog", "a batch read more than %d partitions: "
                      "markers of the others wait for their next batch",
                      (int)RS_ARRAY_LEN(parts));
    uint8_t mk[RS_PSTATE_MARK_LEN];
    for (int k = 0; k < np; k++) {
        rs_pstate_pos_t ps;
        pos(opaque, parts[k], &ps);
        rs_pstate_mark_encode(mk, &ps);
        rs_cl_frame(cl, seq, 'M', parts[k], 0, mk, sizeof(mk));
    }
}

void rs_changelog_stage(rs_changelog_t *cl, uint64_t seq, const rs_msg_t *msgs,
                        int n,
                        void (*pos)(void *opaque, int32_t partition,
                                    rs_pstate_pos_t *p),
                        void *opaque) {
    rs_cl_stage(cl, seq, msgs, NULL, n, pos, opaque);
}

void rs_changelog_stage_ref(rs_changelog_t *cl, uint64_t seq,
                            const rs_msg_t *const *msgs, int n,
                            void (*pos)(void *opaque, int32_t partition,
                                        rs_pstate_pos_t *p),
                            void *opaque) {
    rs_cl_stage(cl, seq, NULL, msgs, n, pos, opaque);
}

void rs_changelog_release(rs_changelog_t *cl, uint64_t seq) {
    while (cl->head < cl->tail) {
        uint8_t *f = cl->stage + cl->head;
        uint64_t fs;
        uint32_t p, kl, vl;
        memcpy(&fs, f, 8);
        if (fs > seq) break;
        memcpy(&p, f + 8, 4);
        memcpy(&kl, f + 12, 4);
        memcpy(&vl, f + 16, 4);
        const uint8_t *key = f + RS_CL_FRAME_HDR, *val = key + kl;
        if (cl->ks) {
            /* exactly-once: into the open transaction (kept by the sink
             * for a redo; its reports come to rs_cl_txn_dr) */
            rs_err_t e = rs_sink_kafka_txn_produce(cl->ks, (int32_t)p, key,
                                                   kl, vl ? val : NULL, vl);
            if (e == RS_ERR_STATE) {
                /* no open transaction: they wait for the next one */
                rs_error("changelog", "release outside a transaction: %s "
                         "records stay staged", cl->topic);
                return;
            }
            if (e != RS_OK) {
                atomic_fetch_add(&cl->failed, 1);
                rs_error("changelog", "cannot produce to %s/%u in the "
                         "transaction: %s", cl->topic, p, rs_err_str(e));
            }
        } else {
            for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    cl->prod, RD_KAFKA_V_RKT(cl->rkt),
                    RD_KAFKA_V_PARTITION((int32_t)p),
                    RD_KAFKA_V_KEY(key, kl),
                    RD_KAFKA_V_VALUE(vl ? (void *)val : NULL, vl),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!e) break;
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    atomic_fetch_add(&cl->failed, 1);
                    rs_error("changelog", "cannot produce to %s/%u: %s",
                             cl->topic, p, rd_kafka_err2str(e));
                    break;
                }
                rd_kafka_poll(cl->prod, 10); /* backpressure */
            }
            cl->inflight++;
        }
        atomic_fetch_add(&cl->records, 1);
        atomic_fetch_add(&cl->bytes, (uint64_t)kl + vl);
        size_t sz = RS_CL_FRAME_HDR + kl + vl;
        cl->head += sz;
        atomic_fetch_sub(&cl->staged_bytes, (int64_t)sz);
    }
    if (!cl->ks) rd_kafka_poll(cl->prod, 0);
}

void rs_changelog_discard(rs_changelog_t *cl, uint64_t seq) {
    while (cl->head < cl->tail) {
        uint8_t *f = cl->stage + cl->head;
        uint64_t fs;
        uint32_t kl, vl;
        memcpy(&fs, f, 8);
        if (fs > seq) break;
        memcpy(&kl, f + 12, 4);
        memcpy(&vl, f + 16, 4);
        size_t sz = RS_CL_FRAME_HDR + kl + vl;
        cl->head += sz;
        atomic_fetch_sub(&cl->staged_bytes, (int64_t)sz);
    }
}

/* Delivery reports of the records produced in transactions (the sink's
 * callback, on the owner thread): a failure dooms the transaction, which
 * is redone with them or discarded, so it is only counted here. */
static void rs_cl_txn_dr(void *opaque, int32_t partition, int64_t offset,
                         int failed) {
    rs_changelog_t *cl = opaque;
    if (failed) {
        atomic_fetch_add(&cl->failed, 1);
        return;
    }
    if (partition >= 0 && partition < RS_PARTS_MAX &&
        offset + 1 > cl->end[partition])
        cl->end[partition] = offset + 1;
}

rs_err_t rs_changelog_use_txn(rs_changelog_t *cl, rs_sink_kafka_t *ks,
                              char *errstr, size_t errstr_size) {
    if (rs_sink_kafka_txn_topic(ks, cl->topic, rs_cl_txn_dr, cl) != RS_OK)
        return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                       "changelog %s: the sink is not transactional or "
                       "already writes another topic in its transactions",
                       cl->topic);
    cl->ks = ks;
    return RS_OK;
}

int rs_changelog_flush(rs_changelog_t *cl, int timeout_ms) {
    rd_kafka_flush(cl->prod, timeout_ms);
    return cl->inflight > 0 ? -1 : 0;
}

int64_t rs_changelog_end(const rs_changelog_t *cl, int32_t partition) {
    return partition >= 0 && partition < RS_PARTS_MAX ? cl->end[partition]
                                                      : -1;
}

int64_t rs_changelog_hwm(rs_changelog_t *cl, int32_t partition) {
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(cl->prod, cl->topic, partition, &lo,
                                         &hi, 10000))
        return -1;
    return hi;
}

/* ------------------------------------------------------------ restore */

static rs_err_t rs_cl_consumer(rs_changelog_t *cl, char *errstr,
                               size_t errstr_size) {
    if (cl->cons) return RS_OK;
    rd_kafka_conf_t *conf = NULL;
    char kerr[512], gid[300];
    static const char *const defaults[][2] = {
        {"fetch.wait.max.ms", "10"},
    };
    if (rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, cl->kafka, cl->bootstrap,
                                defaults, (int)RS_ARRAY_LEN(defaults), &conf,
                                errstr, errstr_size) != RS_OK)
        return RS_ERR_KAFKA;
    snprintf(gid, sizeof(gid), "%s-restore", cl->topic);
    if (rs_kafka_conf_set1(conf, "group.id", gid, errstr, errstr_size) ||
        rs_kafka_conf_set1(conf, "enable.auto.commit", "false", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "enable.partition.eof", "true", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "auto.offset.reset", "error", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "isolation.level", "read_committed", errstr,
                           errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return RS_ERR_KAFKA;
    }
    cl->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!cl->cons) {
        rd_kafka_conf_destroy(conf);
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "changelog consumer: %s", kerr);
    }
    return RS_OK;
}

/* A record waiting for its batch's marker. */
typedef struct rs_cl_pend_s {
    uint8_t *buf;
    size_t cap, len;
    uint64_t n;
} rs_cl_pend_t;

rs_err_t rs_changelog_restore(rs_changelog_t *cl, int32_t partition,
                              int64_t from, rs_pstate_pos_t *pos,
                              uint64_t *nrec, char *errstr,
                              size_t errstr_size) {
    int64_t lo = -1, hi = -1;
    *nrec = 0;
    rs_err_t err = rs_cl_consumer(cl, errstr, errstr_size);
    if (err) return err;
    if (from < 0) from = 0;
    rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
        cl->cons, cl->topic, partition, &lo, &hi, 10000);
    if (kerr)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "changelog %s/%d: watermarks: %s", cl->topic,
                       (int)partition, rd_kafka_err2str(kerr));
    if (hi <= from)
        return rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                       "changelog %s/%d: nothing after offset %lld",
                       cl->topic, (int)partition, (long long)from);
    if (lo > from)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "changelog %s/%d starts at offset %lld, not %lld: "
                       "records were deleted (retention on a topic that is "
                       "not compacted?)", cl->topic, (int)partition,
                       (long long)lo, (long long)from);
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, cl->topic, partition)->offset = from;
    kerr = rd_kafka_assign(cl->cons, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    if (kerr)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "changelog %s/%d: assign: %s", cl->topic,
                       (int)partition, rd_kafka_err2str(kerr));
    rs_cl_pend_t pd = {NULL, 0, 0, 0};
    int found = 0;
    uint64_t nread = 0;
    int64_t t0 = rs_clock_mono_us(), last_us = t0, next_log = t0 + 2000000;
    err = RS_OK;
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(cl->cons, 500);
        int64_t now = rs_clock_mono_us();
        if (now >= next_log) {
            next_log = now + 2000000;
            rs_info("changelog", "partition %d: restoring from the changelog: "
                    "%llu of about %lld records read, %llu applied",
                    (int)partition, (unsigned long long)nread,
                    (long long)(hi - from), (unsigned long long)*nrec);
        }
        if (!rkm) {
            if (now - last_us > 30000000) {
                err = rs_errf(errstr, errstr_size, RS_ERR_TIMEOUT,
                              "changelog %s/%d: nothing read for 30 s at "
                              "%llu of %lld records", cl->topic,
                              (int)partition, (unsigned long long)nread,
                              (long long)(hi - from));
                break;
            }
            continue;
        }
        last_us = now;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            break;
        }
        if (rkm->err) {
            err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                          "changelog %s/%d: %s", cl->topic, (int)partition,
                          rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            break;
        }
        nread++;
        rs_pstate_key_t k;
        if (rs_pstate_key_parse(rkm->key, rkm->key_len, &k, errstr,
                                errstr_size)) {
            err = RS_ERR_CORRUPT;
            rd_kafka_message_destroy(rkm);
            break;
        }
        if (k.store != 'M') { /* held until its batch's marker */
            size_t need = pd.len + 8 + rkm->key_len + rkm->len;
            rs_cl_reserve(&pd.buf, &pd.cap, need);
            uint32_t kl = (uint32_t)rkm->key_len, vl = (uint32_t)rkm->len;
            memcpy(pd.buf + pd.len, &kl, 4);
            memcpy(pd.buf + pd.len + 4, &vl, 4);
            memcpy(pd.buf + pd.len + 8, rkm->key, kl);
            if (vl) memcpy(pd.buf + pd.len + 8 + kl, rkm->payload, vl);
            pd.len = need;
            pd.n++;
            int64_t off = rkm->offset;
            rd_kafka_message_destroy(rkm);
            if (off + 1 >= hi) break; /* the tail after the last marker */
            continue;
        }
        /* a marker: its batch's records are complete */
        int is_mark = 0;
        rs_pstate_pos_t mk;
        for (size_t o = 0; o < pd.len && !err;) {
            uint32_t kl, vl;
            memcpy(&kl, pd.buf + o, 4);
            memcpy(&vl, pd.buf + o + 4, 4);
            int m2 = 0;
            rs_pstate_pos_t unused;
            err = rs_pstate_apply(cl->ps, partition, pd.buf + o + 8, kl,
                                  pd.buf + o + 8 + kl, vl, &unused, &m2,
                                  errstr, errstr_size);
            o += 8 + kl + vl;
        }
        *nrec += pd.n;
        atomic_fetch_add(&cl->restored, pd.n);
        pd.len = 0;
        pd.n = 0;
        if (!err)
            err = rs_pstate_apply(cl->ps, partition, rkm->key, rkm->key_len,
                                  rkm->payload, rkm->len, &mk, &is_mark,
                                  errstr, errstr_size);
        int64_t off = rkm->offset;
        rd_kafka_message_destroy(rkm);
        if (err) break;
        *pos = mk;
        pos->changelog = off + 1;
        found = 1;
        if (off + 1 >= hi) break;
    }
    rd_kafka_assign(cl->cons, NULL);
    free(pd.buf);
    if (err) return err;
    if (!found)
        return rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                       "changelog %s/%d: no marker after offset %lld",
                       cl->topic, (int)partition, (long long)from);
    rs_info("changelog", "partition %d: %llu changelog records (offsets "
            "%lld..%lld) applied in %.0f ms", (int)partition,
            (unsigned long long)*nrec, (long long)from,
            (long long)pos->changelog - 1,
            (double)(rs_clock_mono_us() - t0) / 1e3);
    return RS_OK;
}

void rs_changelog_stats(const rs_changelog_t *cl, rs_changelog_stats_t *st) {
    rs_changelog_t *c = (rs_changelog_t *)cl;
    st->records = atomic_load(&c->records);
    st->bytes = atomic_load(&c->bytes);
    st->failed = atomic_load(&c->failed);
    st->restored = atomic_load(&c->restored);
    st->staged_bytes = atomic_load(&c->staged_bytes);
}
