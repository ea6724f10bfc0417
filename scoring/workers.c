/* workers.c -- score records on every core (see workers.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scoring/sink.h" /* rs_redis_rec_encode */
#include "scoring/workers.h"

/* Event rows per slice below which the records stay on one thread (a
 * wake-up costs about what a few records do). */
#define RS_WORKERS_CHUNK 16

/* Scratch of one slice (one thread at a time). */
typedef struct rs_wslice_s {
    int *order;                    /* [dim] ranking contributions        */
    /* [RS_WORKERS_GENS]: the Kafka bytes of a batch stay in their set
     * until the producer is done with them (rs_workers_hold) */
    rs_enc_arena_t enc_json[RS_WORKERS_GENS + 1],
        enc_kafka[RS_WORKERS_GENS + 1];  /* + the copy set */
    rs_enc_arena_t enc_rec;        /* copied by the Redis sink at once   */
    int bad;                       /* out index that did not encode, -1  */
    rs_err_t err;
} rs_wslice_t;

struct rs_workers_s {
    int n, dim;
    rs_pool_t *pool;
    rs_wslice_t *sl;               /* [n]                                */
    rs_workers_batch_t *b;         /* the batch of the running stage     */
    uint64_t gen_seq[RS_WORKERS_GENS]; /* last batch encoded into a set  */
    int gen_next;                  /* the set the next batch takes       */
};

rs_workers_t *rs_workers_new(int n, int dim, rs_err_t *err, char *errstr,
                             size_t errstr_size) {
    rs_pool_t *pool = rs_pool_new(n, "rs-worker", err, errstr, errstr_size);
    if (!pool) return NULL;
    rs_workers_t *wk = rs_calloc(1, sizeof(*wk));
    wk->n = n;
    wk->dim = dim;
    wk->pool = pool;
    wk->sl = rs_calloc((size_t)n, sizeof(*wk->sl));
    for (int i = 0; i < n; i++)
        wk->sl[i].order = rs_calloc((size_t)(dim > 0 ? dim : 1), sizeof(int));
    return wk;
}

void rs_workers_destroy(rs_workers_t *wk) {
    if (!wk) return;
    rs_pool_destroy(wk->pool);
    for (int i = 0; i < wk->n; i++) {
        free(wk->sl[i].order);
        for (int g = 0; g <= RS_WORKERS_GENS; g++) {
            rs_enc_arena_free(&wk->sl[i].enc_json[g]);
            rs_enc_arena_free(&wk->sl[i].enc_kafka[g]);
        }
        rs_enc_arena_free(&wk->sl[i].enc_rec);
    }
    free(wk->sl);
    free(wk);
}

rs_pool_t *rs_workers_pool(rs_workers_t *wk) { return wk ? wk->pool : NULL; }
int rs_workers_n(const rs_workers_t *wk) { return wk ? wk->n : 1; }

int rs_workers_hold(rs_workers_t *wk, uint64_t seq, uint64_t released) {
    int g = wk->gen_next;
    if (wk->gen_seq[g] > released) return -1; /* librdkafka may read it */
    wk->gen_seq[g] = seq;
    wk->gen_next = (g + 1) % RS_WORKERS_GENS;
    return g;
}

/* -------------------------------------------------------- explanation */

/* Indices of the `k` largest |v[i]| into order[0..k), largest first; ties
 * keep the lower index (deterministic).  O(n*k) at worst; once k are
 * kept, a value not above the smallest kept one (most of them) costs one
 * comparison.  Reentrant. */
static int rs_wk_topk_abs(const float *v, int n, int k, int *order) {
    int m = 0;
    float kth = 0; /* |v| of order[k - 1] once m == k */
    if (k <= 0) return 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (m == k && !(a > kth)) continue; /* not above the k-th: out */
        int pos = m < k ? m : k - 1;
        while (pos > 0 && fabsf(v[order[pos - 1]]) < a) pos--;
        int last = m < k ? m : k - 1;
        for (int j = last; j > pos; j--) order[j] = order[j - 1];
        order[pos] = i;
        if (m < k) m++;
        if (m == k) kth = fabsf(v[order[k - 1]]);
    }
    return m;
}

/* An empty explanation: the counts (see rs_wk_explain). */
static inline void rs_wk_explain_clear(rs_explanation_t *ex) {
    ex->n_attended = ex->n_contrib = ex->n_experts = ex->n_reasons = 0;
}

/* Fill the explanation of one score from the logit contributions of the
 * model: the top |contribution| features, each with its words, and as
 * reasons the words of those that pushed the risk up (so a reason is
 * always a listed contribution > 0).  Reentrant (order: the slice's). */
static void rs_wk_explain(const rs_workers_batch_t *b, const float *x,
                          const float *contrib, const rs_model_output_t *mo,
                          int *order, rs_explanation_t *ex) {
    int D = b->dim, top = (int)b->conf->explain_top;
    /* The reasons come from these contributions: ranking `top` suffices. */
    int m = rs_wk_topk_abs(contrib, D, RS_MIN(top, D), order);
    /* Only the counts are cleared (not the 3.6 KB of entries): every
     * reader of a score goes by them, and each entry below is written
     * whole. */
    rs_wk_explain_clear(ex);
    int tlen[RS_MAX_CONTRIB];
    for (int k = 0; k < top && k < m; k++) {
        int i = order[k];
        rs_contrib_t *c = &ex->contrib[ex->n_contrib];
        rs_strlcpy(c->name, rs_features_name(b->feat, i), sizeof(c->name));
        c->value = x[i];
        c->contribution = contrib[i];
        c->text[0] = '\0';
        int n = rs_features_reason(b->feat, i, x, c->text, sizeof(c->text));
        tlen[ex->n_contrib++] = n > 0 ? n : 0;
    }
    /* The past events of the entity the model attended to most. */
    for (int k = 0; k < mo->n_attended && k < b->conf->explain_attended &&
                    ex->n_attended < RS_MAX_ATTEND;
         k++) {
        const rs_model_attn_t *a = &mo->attended[k];
        rs_attended_t *o = &ex->attended[ex->n_attended++];
        rs_strlcpy(o->event_id, a->event_id, sizeof(o->event_id));
        rs_strlcpy(o->counterparty_id, a->counterparty_id,
                   sizeof(o->counterparty_id));
        o->event_time_ms = a->event_time_ms;
        o->amount = a->amount;
        o->weight = a->weight;
    }
    /* Which experts ran, with their gate weights. */
    for (int k = 0; k < mo->n_experts && ex->n_experts < RS_MAX_EXPERTS; k++) {
        ex->experts[ex->n_experts].expert = (uint32_t)mo->experts[k].expert;
        ex->experts[ex->n_experts].gate_weight = mo->experts[k].gate;
        ex->n_experts++;
    }
    for (int k = 0; k < ex->n_contrib && ex->n_reasons < RS_MAX_REASONS;
         k++) {
        const rs_contrib_t *c = &ex->contrib[k];
        if (c->contribution <= 0.05 || !c->text[0])
            continue; /* only what raised the risk */
        /* the text's length is known: a copy, no strlen */
        memcpy(ex->reasons[ex->n_reasons++], c->text, (size_t)tlen[k] + 1);
    }
}

/* ------------------------------------------------------------- records */

/* Append sc's compact Redis record to `arena` (room for the largest
 * record before each, as rs_score_encode_append); *len = its length, or
 * SIZE_MAX for a record the compact form does not take (the Redis sink
 * stores its JSON). */
static void rs_wk_rec_append(const rs_score_t *sc, rs_enc_arena_t *arena,
                             size_t *len) {
    int n = rs_redis_rec_encode(sc, rs_enc_arena_reserve(arena,
                                                         RS_REDIS_REC_MAX),
                                RS_REDIS_REC_MAX);
    if (n < 0) {
        *len = SIZE_MAX;
        return;
    }
    *len = (size_t)n;
    arena->len += (size_t)n;
}

/* Stage: rows [lo, hi) of the batch, slice `slice`. */
static void rs_wk_records(void *opaque, int lo, int hi, int slice) {
    rs_workers_t *wk = opaque;
    const rs_workers_batch_t *b = wk->b;
    rs_wslice_t *sl = &wk->sl[slice];
    int D = b->dim, p0 = -1, p1 = -1;
    /* the version is the batch's: its length once, not per record */
    size_t vlen = RS_MIN(strlen(b->version), sizeof(b->out->model_version) - 1);
    sl->bad = -1;
    sl->err = RS_OK;
    /* Each record is encoded as soon as it is filled, while its ~6 KB
     * are still in this core's cache (a slice is up to half a batch: its
     * records filled first and encoded after had left the cache). */
    const int kjson = b->kafka_format == RS_FORMAT_JSON;
    rs_enc_arena_t *enc_json = &sl->enc_json[b->gen],
                   *enc_kafka = &sl->enc_kafka[b->gen];
    enc_json->len = enc_kafka->len = sl->enc_rec.len = 0;
    for (int k = lo; k < hi; k++) {
        int p = b->pub[k];
        if (p < 0) continue;
        if (p0 < 0) p0 = p;
        p1 = p + 1;
        const rs_msg_t *m = b->msgs[b->ev_msg[k]];
        rs_score_t *sc = &b->out[p];
        /* The ids: same-size arrays, copied whole (a fixed-size move, no
         * strlen) and NUL-terminated at the end as rs_strlcpy would. */
        _Static_assert(sizeof(sc->event_id) == sizeof(m->ev.id) &&
                           sizeof(sc->entity_id) == sizeof(m->ev.entity_id),
                       "id buffers");
        memcpy(sc->event_id, m->ev.id, sizeof(sc->event_id));
        sc->event_id[sizeof(sc->event_id) - 1] = '\0';
        memcpy(sc->entity_id, m->ev.entity_id, sizeof(sc->entity_id));
        sc->entity_id[sizeof(sc->entity_id) - 1] = '\0';
        memcpy(sc->model_version, b->version, vlen);
        sc->model_version[vlen] = '\0';
        sc->event_time_ms = m->ev.event_time_ms;
        /* the event's own fields travel with its score (case view) */
        rs_event_fields_from_event(&sc->event, &m->ev);
        /* the model explained the rows at or above the threshold only
         * (rs_model_input_t.explain_min: the same comparison) */
        if (b->contrib && b->mout[k].contrib &&
            sc->score >= b->conf->explain_min_score)
            rs_wk_explain(b, b->x + (size_t)k * (size_t)D,
                          b->contrib + (size_t)k * (size_t)D, &b->mout[k],
                          sl->order, &sc->explanation);
        else
            rs_wk_explain_clear(&sc->explanation);
        /* latency ends when the scores are handed to the producer */
        sc->scored_at_ms = b->now_wall_us / 1000;
        sc->latency_us = b->now_mono_us - m->received_us;
        /* Encode once: JSON (Redis, and Kafka unless it takes protobuf);
         * after a record that does not encode, none is usable. */
        if (sl->err != RS_OK) continue;
        rs_err_t err = rs_score_encode_append(RS_FORMAT_JSON, sc, enc_json,
                                              &b->json_lens[p]);
        if (err == RS_OK && !kjson)
            err = rs_score_encode_append(b->kafka_format, sc, enc_kafka,
                                         &b->klens[p]);
        if (err != RS_OK) {
            sl->err = err;
            sl->bad = p;
            continue;
        }
        /* the compact Redis record, from the same record in cache */
        if (b->recs) rs_wk_rec_append(sc, &sl->enc_rec, &b->rec_lens[p]);
    }
    if (p0 < 0 || sl->err != RS_OK) return;
    /* Pointers only now (rows of a slice are consecutive records; the
     * arenas may have moved while growing). */
    size_t uj = 0, uk = 0, ur = 0;
    for (int i = p0; i < p1; i++) {
        b->json[i] = enc_json->data + uj;
        uj += b->json_lens[i];
        if (b->recs) {
            int ok = b->rec_lens[i] != SIZE_MAX;
            b->recs[i] = ok ? sl->enc_rec.data + ur : NULL;
            if (ok) ur += b->rec_lens[i];
            else b->rec_lens[i] = 0;
        }
        if (kjson) {
            b->kbytes[i] = b->json[i];
            b->klens[i] = b->json_lens[i];
        } else {
            b->kbytes[i] = enc_kafka->data + uk;
            uk += b->klens[i];
        }
    }
}

rs_err_t rs_workers_records(rs_workers_t *wk, rs_workers_batch_t *b) {
    if (b->gen < 0 || b->gen > RS_WORKERS_GENS) return RS_ERR_INVALID;
    wk->b = b;
    b->bad = -1;
    int s = rs_pool_run(wk->pool, b->nev, RS_WORKERS_CHUNK, rs_wk_records,
                        wk);
    wk->b = NULL;
    for (int i = 0; i < s; i++)
        if (wk->sl[i].err != RS_OK) {
            b->bad = wk->sl[i].bad;
            return wk->sl[i].err;
        }
    return RS_OK;
}
