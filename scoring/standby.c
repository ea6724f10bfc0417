/* standby.c -- standby replicas (standby.h).
 *
 * Invariants
 * - A partition's records are applied only when their batch's marker is
 *   read, in changelog order; records after the last marker are held,
 *   never applied (a batch cut by a crash, or still being written).
 * - pos / applied of a kept partition name exactly the state the stores
 *   hold for it (has_pos), or it holds nothing usable yet (cold, no
 *   marker read: take() drops it).
 * - A message of a partition not kept, or below the next offset expected
 *   (fetched before a reassignment), is skipped.
 */
#include "scoring/standby.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_int.h"
#include "scoring/parts.h"

typedef struct rs_sb_part_s {
    int kept;
    int has_pos;          /* pos names the state in the stores          */
    int64_t next;         /* next changelog offset to read              */
    rs_pstate_pos_t pos;  /* last marker (changelog: offset after it)   */
    uint8_t *buf;         /* records waiting for their marker:
                           * u32 klen | u32 vlen | key | value          */
    size_t cap, len;
    uint64_t n;
    int64_t lag;
} rs_sb_part_t;

struct rs_standby_s {
    rd_kafka_t *cons;
    char topic[256];
    rs_pstate_t *ps;
    rs_sb_part_t *p;      /* [RS_PARTS_MAX]                              */
    int dirty;            /* the consumer's assignment is to be redone  */
    int nparts;           /* the topic's partitions (-1: not known)     */
    int64_t warn_us;      /* last consumer error logged                 */
    _Atomic int64_t kept, lag, lag_max;
    _Atomic uint64_t records, taken, warm_adds, cold_adds;
};

static int rs_sb_foreign(void *o, int32_t p) { return rs_standby_has(o, p); }

rs_standby_t *rs_standby_new(const rs_kv_t *kafka, const char *bootstrap,
                             const char *topic, rs_pstate_t *ps,
                             char *errstr, size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"fetch.wait.max.ms", "50"},
    };
    rd_kafka_conf_t *conf = NULL;
    char kerr[512], gid[300];
    if (rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, kafka, bootstrap, defaults,
                                (int)RS_ARRAY_LEN(defaults), &conf, errstr,
                                errstr_size) != RS_OK)
        return NULL;
    /* a group id only because librdkafka's consumer wants one: manual
     * assignment, nothing joined, nothing committed */
    snprintf(gid, sizeof(gid), "%s-standby", topic);
    if (rs_kafka_conf_set1(conf, "group.id", gid, errstr, errstr_size) ||
        rs_kafka_conf_set1(conf, "enable.auto.commit", "false", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "enable.auto.offset.store", "false", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "enable.partition.eof", "false", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "auto.offset.reset", "error", errstr,
                           errstr_size) ||
        rs_kafka_conf_set1(conf, "isolation.level", "read_committed", errstr,
                           errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rs_standby_t *sb = rs_calloc(1, sizeof(*sb));
    sb->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!sb->cons) {
        rd_kafka_conf_destroy(conf);
        free(sb);
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "standby consumer: %s",
                kerr);
        return NULL;
    }
    rs_strlcpy(sb->topic, topic, sizeof(sb->topic));
    sb->ps = ps;
    sb->p = rs_calloc(RS_PARTS_MAX, sizeof(*sb->p));
    sb->nparts = -1;
    /* the copies' machines are not counted as this instance's open
     * episodes (alerts.h rs_alerts_set_foreign) */
    rs_alerts_t *al = rs_pstate_alerts(ps);
    if (al) rs_alerts_set_foreign(al, rs_sb_foreign, sb);
    return sb;
}

void rs_standby_destroy(rs_standby_t *sb) {
    if (!sb) return;
    rs_alerts_t *al = sb->ps ? rs_pstate_alerts(sb->ps) : NULL;
    if (al) rs_alerts_set_foreign(al, NULL, NULL);
    rd_kafka_assign(sb->cons, NULL);
    rd_kafka_consumer_close(sb->cons);
    rd_kafka_destroy(sb->cons);
    for (int i = 0; i < RS_PARTS_MAX; i++) free(sb->p[i].buf);
    free(sb->p);
    free(sb);
}

int rs_standby_place(const int32_t *owned, int nowned, int nparts, int n,
                     int32_t *out) {
    if (nowned <= 0 || nparts <= 0 || n <= 0) return 0;
    int32_t last = -1;
    for (int i = 0; i < nowned; i++)
        if (owned[i] < nparts && owned[i] > last) last = owned[i];
    if (last < 0) return 0;
    int64_t want = (int64_t)n * nowned, cnt = 0;
    for (int j = 1; j < nparts && cnt < want; j++) {
        int32_t p = (int32_t)((last + j) % nparts);
        int mine = 0;
        for (int i = 0; i < nowned && !mine; i++) mine = owned[i] == p;
        if (!mine) out[cnt++] = p;
    }
    return (int)cnt;
}

int rs_standby_nparts(rs_standby_t *sb, int timeout_ms) {
    if (sb->nparts > 0) return sb->nparts;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(sb->cons, sb->topic, NULL);
    if (!rkt) return -1;
    if (!rd_kafka_metadata(sb->cons, 0, rkt, &md, timeout_ms) && md &&
        md->topic_cnt == 1 && !md->topics[0].err &&
        md->topics[0].partition_cnt > 0)
        sb->nparts = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return sb->nparts;
}

static int rs_sb_ok(int32_t p) { return p >= 0 && p < RS_PARTS_MAX; }

static void rs_sb_forget(rs_standby_t *sb, rs_sb_part_t *sp) {
    sp->kept = 0;
    sp->has_pos = 0;
    sp->len = 0;
    sp->n = 0;
    sp->lag = 0;
    sb->dirty = 1;
    atomic_fetch_sub(&sb->kept, 1);
}

void rs_standby_add(rs_standby_t *sb, int32_t p, const rs_pstate_pos_t *pos) {
    if (!rs_sb_ok(p)) return;
    rs_sb_part_t *sp = &sb->p[p];
    if (sp->kept) rs_sb_forget(sb, sp);
    sp->kept = 1;
    sp->len = sp->n = 0;
    if (pos && pos->changelog >= 0) {
        sp->pos = *pos;
        sp->next = pos->changelog;
        sp->has_pos = 1;
        atomic_fetch_add(&sb->warm_adds, 1);
    } else {
        rs_pstate_drop(sb->ps, p, NULL);
        sp->next = 0;
        sp->has_pos = 0;
        atomic_fetch_add(&sb->cold_adds, 1);
    }
    sb->dirty = 1;
    atomic_fetch_add(&sb->kept, 1);
}

void rs_standby_remove(rs_standby_t *sb, int32_t p, uint64_t *nkeys) {
    if (nkeys) *nkeys = 0;
    if (!rs_sb_ok(p) || !sb->p[p].kept) return;
    rs_sb_forget(sb, &sb->p[p]);
    rs_pstate_drop(sb->ps, p, nkeys);
}

int rs_standby_has(const rs_standby_t *sb, int32_t p) {
    return rs_sb_ok(p) && sb->p[p].kept;
}

int64_t rs_standby_position(const rs_standby_t *sb, int32_t p) {
    return rs_sb_ok(p) && sb->p[p].kept && sb->p[p].has_pos
               ? sb->p[p].pos.changelog : -1;
}

int rs_standby_take(rs_standby_t *sb, int32_t p, rs_pstate_pos_t *pos) {
    if (!rs_sb_ok(p) || !sb->p[p].kept) return 0;
    rs_sb_part_t *sp = &sb->p[p];
    int has = sp->has_pos;
    if (has) *pos = sp->pos;
    rs_sb_forget(sb, sp); /* the records held without a marker go */
    if (!has) rs_pstate_drop(sb->ps, p, NULL);
    else atomic_fetch_add(&sb->taken, 1);
    return has;
}

/* The consumer reads every kept partition from its next offset. */
static void rs_sb_assign(rs_standby_t *sb) {
    rd_kafka_topic_partition_list_t *pl =
        rd_kafka_topic_partition_list_new(16);
    for (int32_t p = 0; p < RS_PARTS_MAX; p++)
        if (sb->p[p].kept)
            rd_kafka_topic_partition_list_add(pl, sb->topic, p)->offset =
                sb->p[p].next;
    rd_kafka_resp_err_t e = rd_kafka_assign(sb->cons, pl->cnt ? pl : NULL);
    if (e)
        rs_warn("standby", "cannot assign the changelog partitions: %s "
                "(tried again at the next poll)", rd_kafka_err2str(e));
    else
        sb->dirty = 0;
    rd_kafka_topic_partition_list_destroy(pl);
}

static void rs_sb_reserve(rs_sb_part_t *sp, size_t need) {
    if (need <= sp->cap) return;
    size_t c = sp->cap ? sp->cap : 65536;
    while (c < need) c *= 2;
    sp->buf = rs_realloc(sp->buf, c);
    sp->cap = c;
}

/* Give up the copy of p after an error (logged). */
static void rs_sb_fail(rs_standby_t *sb, int32_t p, const char *why) {
    uint64_t nk = 0;
    rs_standby_remove(sb, p, &nk);
    rs_warn("standby", "partition %d: standby copy dropped (%llu entity "
            "keys): %s; a failover restores it from the changelog", (int)p,
            (unsigned long long)nk, why);
}

/* One changelog message of kept partition p: held, or a marker that
 * applies its batch.  Returns the records applied. */
static int rs_sb_msg(rs_standby_t *sb, int32_t p,
                     const rd_kafka_message_t *rkm) {
    rs_sb_part_t *sp = &sb->p[p];
    char e2[512];
    rs_pstate_key_t k;
    sp->next = rkm->offset + 1;
    if (rs_pstate_key_parse(rkm->key, rkm->key_len, &k, e2, sizeof(e2))) {
        rs_sb_fail(sb, p, e2);
        return 0;
    }
    if (k.store != 'M') {
        size_t need = sp->len + 8 + rkm->key_len + rkm->len;
        rs_sb_reserve(sp, need);
        uint32_t kl = (uint32_t)rkm->key_len, vl = (uint32_t)rkm->len;
        memcpy(sp->buf + sp->len, &kl, 4);
        memcpy(sp->buf + sp->len + 4, &vl, 4);
        memcpy(sp->buf + sp->len + 8, rkm->key, kl);
        if (vl) memcpy(sp->buf + sp->len + 8 + kl, rkm->payload, vl);
        sp->len = need;
        sp->n++;
        return 0;
    }
    rs_err_t err = RS_OK;
    for (size_t o = 0; o < sp->len && !err;) {
        uint32_t kl, vl;
        memcpy(&kl, sp->buf + o, 4);
        memcpy(&vl, sp->buf + o + 4, 4);
        rs_pstate_pos_t unused;
        int m2 = 0;
        err = rs_pstate_apply(sb->ps, p, sp->buf + o + 8, kl,
                              sp->buf + o + 8 + kl, vl, &unused, &m2, e2,
                              sizeof(e2));
        o += 8 + kl + vl;
    }
    rs_pstate_pos_t mk;
    int is_mark = 0;
    if (!err)
        err = rs_pstate_apply(sb->ps, p, rkm->key, rkm->key_len, rkm->payload,
                              rkm->len, &mk, &is_mark, e2, sizeof(e2));
    if (err) {
        rs_sb_fail(sb, p, e2);
        return 0;
    }
    int n = (int)sp->n + 1;
    sp->len = sp->n = 0;
    sp->pos = mk;
    sp->pos.changelog = rkm->offset + 1;
    if (!sp->has_pos) /* from here on a takeover can use it */
        rs_info("standby", "partition %d: standby copy ready (its first "
                "complete batch, changelog offset %lld)", (int)p,
                (long long)sp->pos.changelog);
    sp->has_pos = 1;
    atomic_fetch_add(&sb->records, (uint64_t)n);
    return n;
}

int rs_standby_poll(rs_standby_t *sb, int max_ms) {
    if (sb->dirty) rs_sb_assign(sb);
    if (!atomic_load(&sb->kept)) return 0;
    int64_t end = rs_clock_mono_us() + (int64_t)max_ms * 1000;
    int applied = 0, bad = 0;
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(sb->cons, 0);
        if (!rkm) break;
        int32_t p = rkm->partition;
        int mine = rkm->rkt && rs_sb_ok(p) && sb->p[p].kept &&
                   !strcmp(rd_kafka_topic_name(rkm->rkt), sb->topic);
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (mine && (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                             rkm->err ==
                                 RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)) {
                    /* records under its position deleted */
                    rs_sb_fail(sb, p, rd_kafka_message_errstr(rkm));
                } else {
                    int64_t now = rs_clock_mono_us();
                    if (now - sb->warn_us > 10000000) {
                        sb->warn_us = now;
                        rs_warn("standby", "changelog consumer: %s",
                                rd_kafka_message_errstr(rkm));
                    }
                    bad = 1;
                }
            }
        } else if (mine && rkm->offset >= sb->p[p].next) {
            applied += rs_sb_msg(sb, p, rkm);
        }
        rd_kafka_message_destroy(rkm);
        if (rs_clock_mono_us() >= end) break;
    }
    /* lag: records after the applied markers (watermarks as last fetched) */
    int64_t lag = 0, lmax = 0;
    for (int32_t p = 0; p < RS_PARTS_MAX; p++) {
        rs_sb_part_t *sp = &sb->p[p];
        if (!sp->kept) continue;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(sb->cons, sb->topic, p, &lo,
                                           &hi) == 0 && hi >= 0) {
            int64_t at = sp->has_pos ? sp->pos.changelog : 0;
            sp->lag = hi > at ? hi - at : 0;
        }
        lag += sp->lag;
        if (sp->lag > lmax) lmax = sp->lag;
    }
    atomic_store(&sb->lag, lag);
    atomic_store(&sb->lag_max, lmax);
    return bad && !applied ? -1 : applied;
}

void rs_standby_stats(const rs_standby_t *sb, rs_standby_stats_t *st) {
    rs_standby_t *s = (rs_standby_t *)sb;
    st->partitions = atomic_load(&s->kept);
    st->lag = atomic_load(&s->lag);
    st->lag_max = atomic_load(&s->lag_max);
    st->records = atomic_load(&s->records);
    st->taken = atomic_load(&s->taken);
    st->warm_adds = atomic_load(&s->warm_adds);
    st->cold_adds = atomic_load(&s->cold_adds);
}
