/* sink_redis_cmds.c -- the RESP commands of a batch of score records
 * (key schema in sink.h, design note in sink_redis.c): the ring writer
 * and the command builder.  No I/O: the owner's synchronous write and the
 * async enqueue both build through here. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/fmt.h"
#include "scoring/sink_redis_int.h"

/* ------------------------------------------------------------------ keys */

/* Key "<prefix>score:<event_id>" / "<prefix>entity:<id>:scores". */
size_t rs_redis_key(char *buf, size_t size, const char *prefix,
                    const char *a, const char *b, const char *c) {
    const char *part[4] = {prefix, a, b, c};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = RS_MIN(strlen(part[i]), size - 1 - n);
        memcpy(buf + n, part[i], l);
        n += l;
    }
    buf[n] = '\0';
    return n;
}

/* rs_redis_key(buf, size, <the n bytes already in buf>, s, "", "") for
 * a string s of known length sl: s clipped to the room left. */
static inline size_t rs_redis_key_append(char *buf, size_t size, size_t n,
                                         const char *s, size_t sl) {
    size_t l = RS_MIN(sl, size - 1 - n);
    memcpy(buf + n, s, l);
    buf[n + l] = '\0';
    return n + l;
}

/* ------------------------------------------------------------ async: ring */

/* A writer over a plain buffer buf[cap] from 0 (buf NULL, cap 0: only
 * count the bytes). */
void rs_ring_w_linear(rs_ring_w_t *w, unsigned char *buf, size_t cap) {
    *w = (rs_ring_w_t){.ring = buf, .cap = cap ? cap : 1, .pos = 0,
                       .limit = cap, .off = 0};
}

uint64_t rs_ring_w_pos(const rs_ring_w_t *w) { return w->pos; }

void rs_ring_copy_in(unsigned char *ring, uint64_t cap, uint64_t pos,
                     const void *p, size_t len) {
    size_t off = (size_t)(pos % cap), first = RS_MIN(len, (size_t)(cap - off));
    memcpy(ring + off, p, first);
    if (len > first) memcpy(ring, (const unsigned char *)p + first, len - first);
}

void rs_ring_copy_out(const unsigned char *ring, uint64_t cap,
                      uint64_t pos, void *p, size_t len) {
    size_t off = (size_t)(pos % cap), first = RS_MIN(len, (size_t)(cap - off));
    memcpy(p, ring + off, first);
    if (len > first) memcpy((unsigned char *)p + first, ring, len - first);
}

/* A command is some 15 pieces of a few bytes: the ring index is carried
 * along (w->off) instead of taking pos % cap (a division) for each. */
void rs_ring_put(rs_ring_w_t *w, const void *p, size_t len) {
    if (w->pos + len <= w->limit) {
        size_t room = (size_t)(w->cap - w->off);
        if (len < room) {
            memcpy(w->ring + w->off, p, len);
            w->off += len;
        } else {
            memcpy(w->ring + w->off, p, room);
            memcpy(w->ring, (const unsigned char *)p + room, len - room);
            w->off = len - room;
        }
    }
    w->pos += len;
}

/* "<kind><v>\r\n": a RESP array or bulk length. */
static void rs_resp_len(rs_ring_w_t *w, char kind, uint64_t v) {
    char b[24], *e = b + sizeof(b), *p = e;
    *--p = '\n';
    *--p = '\r';
    do *--p = (char)('0' + v % 10); while ((v /= 10));
    *--p = kind;
    rs_ring_put(w, p, (size_t)(e - p));
}

/* A bulk string. */
static void rs_resp_bulk(rs_ring_w_t *w, const void *p, size_t len) {
    rs_resp_len(w, '$', len);
    rs_ring_put(w, p, len);
    rs_ring_put(w, "\r\n", 2);
}

/* "<kind><v>\r\n" at p; returns the end. */
static inline char *rs_resp_num(char *p, char kind, uint64_t v) {
    *p++ = kind;
    p += rs_fmt_u64(v, p);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* A SET <key> <value> PX <ttl> NX up to its value's bytes, as one piece
 * (the same bytes as rs_resp_len + rs_resp_bulk of each argument; a
 * record's command was some 19 pieces, 3 now): kl < RS_ID_MAX + 64. */
static void rs_resp_set_head(rs_ring_w_t *w, const char *key, size_t kl,
                             size_t vlen) {
    char b[RS_ID_MAX + 64 + 64], *p = b;
    memcpy(p, "*6\r\n$3\r\nSET\r\n", 13);
    p = rs_resp_num(p + 13, '$', kl);
    memcpy(p, key, kl);
    p += kl;
    *p++ = '\r';
    *p++ = '\n';
    p = rs_resp_num(p, '$', vlen);
    rs_ring_put(w, b, (size_t)(p - b));
}

/* What follows a SET's value: "\r\n" PX <ttl> NX (buf[64]; ttl is a
 * decimal of at most 20 digits).  Returns its length. */
static size_t rs_resp_set_tail(char *buf, const char *ttl) {
    size_t tl = strlen(ttl);
    char *p = buf;
    memcpy(p, "\r\n$2\r\nPX\r\n", 10);
    p = rs_resp_num(p + 10, '$', tl);
    memcpy(p, ttl, tl);
    p += tl;
    memcpy(p, "\r\n$2\r\nNX\r\n", 10);
    return (size_t)(p + 10 - buf);
}

/* Link the scores of each entity: grp_next[i] = the next score of the
 * same entity (-1: none), and grp_next[grp_cap + i] = 1 for the first
 * score of an entity.  Owner thread; grows the scratch to n. */
static void rs_redis_group(rs_sink_redis_t *sink, const rs_score_t *scores,
                           int n) {
    if (n > sink->grp_cap) {
        uint32_t t = 16;
        while (t < 2u * (uint32_t)n) t *= 2;
        sink->grp_next =
            rs_realloc(sink->grp_next, 2 * (size_t)n * sizeof(int));
        sink->grp_tab = rs_realloc(sink->grp_tab, t * sizeof(int));
        sink->grp_plan =
            rs_realloc(sink->grp_plan, (size_t)n * sizeof(*sink->grp_plan));
        sink->grp_cap = n;
        sink->grp_tabsz = t;
    }
    uint32_t mask = sink->grp_tabsz - 1;
    int *first = sink->grp_next + sink->grp_cap;
    memset(sink->grp_tab, 0, sink->grp_tabsz * sizeof(int));
    for (int i = 0; i < n; i++) {
        const char *e = scores[i].entity_id;
        uint32_t h = (uint32_t)rs_hash_str(e) & mask;
        sink->grp_next[i] = -1;
        first[i] = 0;
        for (;; h = (h + 1) & mask) {
            int t = sink->grp_tab[h];
            if (t == 0) {
                sink->grp_tab[h] = i + 1;
                first[i] = 1;
                break;
            }
            if (!strcmp(scores[t - 1].entity_id, e)) {
                sink->grp_next[t - 1] = i;
                sink->grp_tab[h] = i + 1;
                break;
            }
        }
    }
}

/* Entity index upkeep (design in sink_redis.c, "Entity indexes").  An
 * entity's slot says when its index's expiry was last refreshed and how
 * many members were added since its last trim; the plan refreshes the
 * expiry (PEXPIRE ttl + 2 period) when that is `period` old and trims when
 * the index may hold more than entity_index_max + slack.  A miss (new
 * entity, evicted, table reset) plans both. */
void rs_redis_plan(rs_sink_redis_t *sink, const rs_score_t *scores, int n,
                   int async, int64_t now_ms) {
    rs_redis_group(sink, scores, n);
    const int *first = sink->grp_next + sink->grp_cap;
    if (!async) {
        /* The synchronous path sets PEXPIRE ttl, below the async slack:
         * the table forgets every index. */
        sink->ix_epoch++;
        for (int i = 0; i < n; i++)
            if (first[i])
                sink->grp_plan[i] = (rs_redis_ixplan_t){.slot = -1,
                                                        .expire = 1,
                                                        .trim = 1};
        return;
    }
    if (!sink->ix)
        sink->ix = rs_calloc((size_t)RS_REDIS_IX_SETS * RS_REDIS_IX_WAYS,
                             sizeof(*sink->ix));
    /* A new writer connection (perhaps to a server that lost its data):
     * the table's memory of expiries no longer holds. */
    uint32_t g = atomic_load_explicit(&sink->wgen, memory_order_acquire);
    if (g != sink->ix_gen) {
        sink->ix_gen = g;
        sink->ix_epoch++;
    }
    const uint32_t epoch = sink->ix_epoch;
    for (int i = 0; i < n; i++) {
        if (!first[i]) continue;
        uint32_t m = 0;
        for (int j = i; j >= 0; j = sink->grp_next[j]) m++;
        uint64_t tag = rs_hash_str(scores[i].entity_id) | 1;
        int base = (int)((tag >> 24) & (RS_REDIS_IX_SETS - 1)) *
                   RS_REDIS_IX_WAYS,
            hit = -1, victim = base;
        for (int k = base; k < base + RS_REDIS_IX_WAYS; k++) {
            const rs_redis_ix_t *e = &sink->ix[k];
            int live = e->tag && e->epoch == epoch;
            if (live && e->tag == tag) {
                hit = k;
                break;
            }
            const rs_redis_ix_t *v = &sink->ix[victim];
            int vlive = v->tag && v->epoch == epoch;
            if (vlive && (!live || e->t_ms < v->t_ms)) victim = k;
        }
        rs_redis_ixplan_t *p = &sink->grp_plan[i];
        if (hit < 0) {
            *p = (rs_redis_ixplan_t){
                .next = {.tag = tag, .t_ms = now_ms, .adds = 0,
                         .epoch = epoch},
                .slot = victim, .expire = 1, .trim = 1};
            continue;
        }
        const rs_redis_ix_t *e = &sink->ix[hit];
        p->slot = hit;
        p->expire = now_ms - e->t_ms >= sink->ix_period_ms;
        p->trim = (int64_t)e->adds + m > sink->ix_slack;
        p->next = (rs_redis_ix_t){.tag = tag,
                                  .t_ms = p->expire ? now_ms : e->t_ms,
                                  .adds = p->trim ? 0 : e->adds + m,
                                  .epoch = epoch};
    }
}

void rs_redis_commit(rs_sink_redis_t *sink, const rs_score_t *scores,
                     int n) {
    const int *first = sink->grp_next + sink->grp_cap;
    (void)scores;
    for (int i = 0; i < n; i++)
        if (first[i] && sink->grp_plan[i].slot >= 0)
            sink->ix[sink->grp_plan[i].slot] = sink->grp_plan[i].next;
}

/* 1 for the decisions that go to the alerts topic (review, decline,
 * alert): the ones the alert index lists. */
static int rs_redis_alerted(const rs_score_t *sc) {
    return sc->decision == RS_DECISION_REVIEW ||
           sc->decision == RS_DECISION_DECLINE ||
           sc->decision == RS_DECISION_ALERT;
}

/* The alert index commands of a batch:
 *   ZADD <prefix>alerts t1 id1 t2 id2 ...  (the alerted scores of the batch)
 *   PEXPIRE <prefix>alerts ttl
 *   ZREMRANGEBYRANK <prefix>alerts 0 -(alert_index_max + 1)
 * once per batch (as for an entity index: the same members, expiry and
 * newest alert_index_max as one ZADD + PEXPIRE + trim per alert); nothing
 * when no score of the batch is alerted, the usual case.  Adds to
 * *ncmds. */
static void rs_redis_alert_cmds(const rs_sink_redis_t *sink, rs_ring_w_t *w,
                                const rs_score_t *scores, int n,
                                uint32_t *ncmds) {
    char key[64], tbuf[RS_FMT_I64_MAX];
    uint64_t m = 0;
    for (int i = 0; i < n; i++) m += (uint64_t)rs_redis_alerted(&scores[i]);
    if (m == 0) return;
    size_t kl = rs_redis_key(key, sizeof(key), sink->conf.key_prefix,
                             "alerts", "", "");
    rs_resp_len(w, '*', 2 + 2 * m);
    rs_resp_bulk(w, "ZADD", 4);
    rs_resp_bulk(w, key, kl);
    for (int i = 0; i < n; i++) {
        if (!rs_redis_alerted(&scores[i])) continue;
        rs_resp_bulk(w, tbuf,
                     (size_t)rs_fmt_i64(scores[i].event_time_ms, tbuf));
        rs_resp_bulk(w, scores[i].event_id, strlen(scores[i].event_id));
    }
    rs_resp_len(w, '*', 3);
    rs_resp_bulk(w, "PEXPIRE", 7);
    rs_resp_bulk(w, key, kl);
    rs_resp_bulk(w, sink->ttl_arg, strlen(sink->ttl_arg));
    rs_resp_len(w, '*', 4);
    rs_resp_bulk(w, "ZREMRANGEBYRANK", 15);
    rs_resp_bulk(w, key, kl);
    rs_resp_bulk(w, "0", 1);
    rs_resp_bulk(w, sink->alert_cap_arg, strlen(sink->alert_cap_arg));
    *ncmds += 3;
}

/* The commands of one batch (key schema in sink.h), as planned by
 * rs_redis_plan:
 *   per score        SET <prefix>score:<id> record PX ttl NX
 *                    (record: compact -- recs[i] if given, else encoded
 *                    here --, or json[i] with record_format json or when
 *                    the compact form does not take it)
 *                    [SET <prefix>input:<id> log PX input_ttl NX]
 *   per entity       ZADD <prefix>entity:<e>:scores t1 id1 t2 id2 ...
 *   of the batch     [PEXPIRE <same key> ttl (sync) | ttl + 2 period]
 *                    [ZREMRANGEBYRANK <same key> 0 -(entity_index_max+1)]
 *   per batch with   ZADD <prefix>alerts of its review/decline/alert
 *   an alert         scores, PEXPIRE, ZREMRANGEBYRANK (rs_redis_alert_cmds)
 *   expiry tail      PEXPIRE <key> ttl + 2 period of each entity index
 *   (async)          whose refresh was skipped (sent only when needed)
 * The records come first, so an id is in an index only once its record
 * is (the writer sends a batch in order, in one pipeline).  Trimming
 * once after all of an entity's members were added keeps the same newest
 * entity_index_max as trimming after each one.  Adds to *ncmds /
 * *ninputs / *tail_cmds; *tail_bytes = the tail's bytes. */
void rs_redis_build(rs_sink_redis_t *sink, rs_ring_w_t *w,
                    const rs_score_t *scores, int n,
                    const char *const *json, const size_t *json_lens,
                    const void *const *recs, const size_t *rec_lens,
                    const void *const *logs, const size_t *log_lens,
                    uint32_t *ncmds, uint32_t *ninputs, uint32_t *tail_cmds,
                    uint64_t *tail_bytes) {
    char key[RS_ID_MAX + 64], ikey[RS_ID_MAX + 64], tbuf[RS_FMT_I64_MAX],
        set_tail[64], iset_tail[64];
    const char *prefix = sink->conf.key_prefix;
    const size_t ttl_len = strlen(sink->ttl_arg),
                 cap_len = strlen(sink->cap_arg),
                 ixttl_len = strlen(sink->ix_ttl_arg),
                 stl = rs_resp_set_tail(set_tail, sink->ttl_arg),
                 istl = rs_resp_set_tail(iset_tail, sink->input_ttl_arg);
    const int compact = sink->conf.record_format == RS_REDIS_RECORD_COMPACT;
    /* "<prefix>score:" and "<prefix>input:" once a batch; per score only
     * the id is appended (as rs_redis_key would: clipped to the buffer) */
    const size_t kp = rs_redis_key(key, sizeof(key), prefix, "score:", "",
                                   ""),
                 ikp = rs_redis_key(ikey, sizeof(ikey), prefix, "input:", "",
                                    "");
    for (int i = 0; i < n; i++) {
        const rs_score_t *sc = &scores[i];
        /* NX: the first decision recorded for an event stays the record;
         * a replay after a crash (at-least-once input) cannot replace it
         * with a different one.  The index is idempotent as it is. */
        const size_t idl = strlen(sc->event_id);
        size_t kl = rs_redis_key_append(key, sizeof(key), kp, sc->event_id,
                                        idl);
        const void *val;
        size_t vl;
        int cl;
        if (compact && recs && recs[i]) { /* made by the records stage */
            val = recs[i];
            vl = rec_lens[i];
        } else if (compact && (cl = rs_redis_rec_encode(
                                   sc, sink->rec_buf, RS_REDIS_REC_MAX)) >= 0) {
            val = sink->rec_buf;
            vl = (size_t)cl;
        } else {
            val = json[i];
            vl = json_lens[i];
        }
        rs_resp_set_head(w, key, kl, vl);
        rs_ring_put(w, val, vl);
        rs_ring_put(w, set_tail, stl);
        (*ncmds)++;
        if (logs && logs[i]) {
            /* NX too: the input of the decision on record. */
            kl = rs_redis_key_append(ikey, sizeof(ikey), ikp, sc->event_id,
                                     idl);
            rs_resp_set_head(w, ikey, kl, log_lens[i]);
            rs_ring_put(w, logs[i], log_lens[i]);
            rs_ring_put(w, iset_tail, istl);
            (*ncmds)++;
            (*ninputs)++;
        }
    }
    const int *first = sink->grp_next + sink->grp_cap;
    int skipped = 0;
    for (int i = 0; i < n; i++) {
        if (!first[i]) continue; /* its entity's group was written */
        const rs_redis_ixplan_t *p = &sink->grp_plan[i];
        int m = 0;
        for (int j = i; j >= 0; j = sink->grp_next[j]) m++;
        size_t kl = rs_redis_key(key, sizeof(key), prefix, "entity:",
                                 scores[i].entity_id, ":scores");
        rs_resp_len(w, '*', 2 + 2 * (uint64_t)m);
        rs_resp_bulk(w, "ZADD", 4);
        rs_resp_bulk(w, key, kl);
        for (int j = i; j >= 0; j = sink->grp_next[j]) {
            rs_resp_bulk(w, tbuf,
                         (size_t)rs_fmt_i64(scores[j].event_time_ms, tbuf));
            rs_resp_bulk(w, scores[j].event_id, strlen(scores[j].event_id));
        }
        (*ncmds)++;
        if (p->expire) {
            rs_resp_len(w, '*', 3);
            rs_resp_bulk(w, "PEXPIRE", 7);
            rs_resp_bulk(w, key, kl);
            if (p->slot < 0)
                rs_resp_bulk(w, sink->ttl_arg, ttl_len);
            else
                rs_resp_bulk(w, sink->ix_ttl_arg, ixttl_len);
            (*ncmds)++;
        } else {
            skipped++;
        }
        if (p->trim) {
            rs_resp_len(w, '*', 4);
            rs_resp_bulk(w, "ZREMRANGEBYRANK", 15);
            rs_resp_bulk(w, key, kl);
            rs_resp_bulk(w, "0", 1);
            rs_resp_bulk(w, sink->cap_arg, cap_len);
            (*ncmds)++;
        }
    }
    rs_redis_alert_cmds(sink, w, scores, n, ncmds);
    const uint64_t tail0 = rs_ring_w_pos(w);
    for (int i = 0; i < n && skipped; i++) {
        if (!first[i] || sink->grp_plan[i].expire) continue;
        size_t kl = rs_redis_key(key, sizeof(key), prefix, "entity:",
                                 scores[i].entity_id, ":scores");
        rs_resp_len(w, '*', 3);
        rs_resp_bulk(w, "PEXPIRE", 7);
        rs_resp_bulk(w, key, kl);
        rs_resp_bulk(w, sink->ix_ttl_arg, ixttl_len);
        (*tail_cmds)++;
        skipped--;
    }
    *tail_bytes = rs_ring_w_pos(w) - tail0;
}
