/* proto_pb.c -- protobuf codec for riskstream records (protobuf-c).
 *
 * Decoding: protobuf-c unpacks into its own structs through a
 * ProtobufCAllocator backed by a per-thread bump arena.  The arena is reset
 * at the start of every call (free is a no-op), so in steady state a decode
 * does no malloc.  If a message needs more than the arena holds, the unpack
 * fails with the arena marked exhausted; the arena then doubles and the
 * unpack is retried, up to RS_PB_ARENA_MAX (4 * RS_MSG_MAX), beyond which
 * the message is rejected with RS_ERR_TOOBIG.  The arena's memory is freed
 * by a pthread key destructor when the thread exits.
 *
 * Encoding: protobuf-c structs on the stack point straight at the C
 * record's buffers (no copies); get_packed_size is checked against the
 * caller's buffer before protobuf_c_message_pack.
 *
 * Invariant: a string from the wire is copied only if it fits its C buffer
 * (RS_ERR_TOOBIG otherwise); repeated fields beyond the C array sizes are
 * RS_ERR_TOOBIG.  Events and labels are validated after decoding.
 *
 * Threads: reentrant; the arena is thread-local.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"
#include "riskstream.pb-c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

#define RS_PB_ARENA_MIN (16 * 1024)
#define RS_PB_ARENA_MAX (4 * RS_MSG_MAX)
#define RS_PB_ALIGN 16

typedef struct rs_arena_s {
    unsigned char *base;   /* [cap] */
    size_t cap, used;
    int exhausted;         /* an allocation did not fit since the reset */
} rs_arena_t;

static _Thread_local rs_arena_t rs_tl_arena;
static pthread_key_t rs_arena_key;
static pthread_once_t rs_arena_once = PTHREAD_ONCE_INIT;

static void rs_arena_thread_exit(void *base) { free(base); }

static void rs_arena_key_init(void) {
    /* Without the key the arena would leak at thread exit; decoding still
     * works, so a failure here is not fatal. */
    (void)pthread_key_create(&rs_arena_key, rs_arena_thread_exit);
}

static void *rs_arena_alloc(void *data, size_t size) {
    rs_arena_t *a = data;
    size_t need = (size + (RS_PB_ALIGN - 1)) & ~(size_t)(RS_PB_ALIGN - 1);
    if (need < size || need > a->cap - a->used) {
        a->exhausted = 1;
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += need;
    return p;
}

static void rs_arena_free(void *data, void *p) {
    RS_UNUSED(data);
    RS_UNUSED(p);   /* everything goes at the next reset */
}

/* Replace the arena's block by one of `cap` bytes.  0 or -1. */
static int rs_arena_reserve(rs_arena_t *a, size_t cap) {
    pthread_once(&rs_arena_once, rs_arena_key_init);
    unsigned char *p = malloc(cap);
    if (!p) return -1;
    free(a->base);
    a->base = p;
    a->cap = cap;
    a->used = 0;
    (void)pthread_setspecific(rs_arena_key, p);
    return 0;
}

size_t rs_proto_arena_size(void) { return rs_tl_arena.cap; }

/* Unpack with the thread's arena, growing it as needed.  On success the
 * returned message lives in the arena until the next call on this thread. */
static ProtobufCMessage *rs_pb_unpack(const ProtobufCMessageDescriptor *desc,
                                      const uint8_t *buf, size_t len,
                                      const char *what, rs_err_t *err,
                                      char *errstr, size_t es) {
    rs_arena_t *a = &rs_tl_arena;
    ProtobufCAllocator alloc = { rs_arena_alloc, rs_arena_free, a };

    *err = RS_OK;
    if (!buf && len) {
        *err = rs_errf(errstr, es, RS_ERR_INVALID, "no input");
        return NULL;
    }
    if (len > RS_MSG_MAX) {
        *err = rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "message of %zu bytes exceeds the limit of %d bytes",
                       len, RS_MSG_MAX);
        return NULL;
    }
    if (!a->base && rs_arena_reserve(a, RS_PB_ARENA_MIN) != 0) {
        *err = rs_errf(errstr, es, RS_ERR_NOMEM, "protobuf arena: no memory");
        return NULL;
    }
    for (;;) {
        a->used = 0;
        a->exhausted = 0;
        ProtobufCMessage *msg =
            protobuf_c_message_unpack(desc, &alloc, len, buf);
        if (msg) return msg;
        if (!a->exhausted) {
            *err = rs_errf(errstr, es, RS_ERR_INVALID,
                           "malformed protobuf %s (%zu bytes)", what, len);
            return NULL;
        }
        if (a->cap >= RS_PB_ARENA_MAX) {
            *err = rs_errf(errstr, es, RS_ERR_TOOBIG,
                           "protobuf %s needs more than %d bytes to decode",
                           what, RS_PB_ARENA_MAX);
            return NULL;
        }
        if (rs_arena_reserve(a, RS_MIN(a->cap * 2, (size_t)RS_PB_ARENA_MAX))) {
            *err = rs_errf(errstr, es, RS_ERR_NOMEM,
                           "protobuf arena: no memory");
            return NULL;
        }
    }
}

/* --------------------------------------------------------------- decoding */

static int pb_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* protobuf-c hands strings over NUL-terminated without their length, so an
 * embedded NUL would silently shorten an id ("ab\0cd" -> "ab").  Walk the
 * wire form once (after a successful unpack, so it is well-formed) and
 * find a string field holding a NUL; its dotted path goes to `path`.
 * Returns 1 if found. */
static int pb_find_nul(const ProtobufCMessageDescriptor *desc,
                       const uint8_t *p, size_t len, int depth, char *path,
                       size_t path_size) {
    size_t i = 0;
    while (i < len) {
        uint64_t tag, x;
        if (!pb_varint(p, len, &i, &tag)) return 0;
        switch (tag & 7) {
        case 0:
            if (!pb_varint(p, len, &i, &x)) return 0;
            break;
        case 1:
            if (len - i < 8) return 0;
            i += 8;
            break;
        case 5:
            if (len - i < 4) return 0;
            i += 4;
            break;
        case 2: {
            if (!pb_varint(p, len, &i, &x) || x > len - i) return 0;
            const ProtobufCFieldDescriptor *f =
                (tag >> 3) <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(
                          desc, (unsigned)(tag >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_STRING &&
                memchr(p + i, '\0', (size_t)x)) {
                snprintf(path, path_size, "%s", f->name);
                return 1;
            }
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 8) {
                char sub[64];
                if (pb_find_nul(f->descriptor, p + i, (size_t)x, depth + 1,
                                sub, sizeof(sub))) {
                    snprintf(path, path_size, "%s.%s", f->name, sub);
                    return 1;
                }
            }
            i += (size_t)x;
            break;
        }
        default:
            return 0;   /* groups: not in our schema */
        }
    }
    return 0;
}

static rs_err_t pb_nul_check(const ProtobufCMessageDescriptor *desc,
                             const uint8_t *buf, size_t len, char *errstr,
                             size_t es) {
    char path[128];
    if (!pb_find_nul(desc, buf, len, 0, path, sizeof(path))) return RS_OK;
    return rs_errf(errstr, es, RS_ERR_INVALID,
                   "field '%s': contains a NUL byte", path);
}

static rs_err_t pb_str(char *dst, size_t size, const char *s,
                       const char *what, char *errstr, size_t es) {
    if (!s) s = "";
    return rs_str_copy(dst, size, s, strlen(s), what, errstr, es);
}

static rs_err_t pb_count(size_t n, size_t max, const char *what,
                         char *errstr, size_t es) {
    if (n <= max) return RS_OK;
    return rs_errf(errstr, es, RS_ERR_TOOBIG,
                   "field '%s': %zu entries, max %zu", what, n, max);
}

static rs_err_t pb_schema(uint32_t ver, char *errstr, size_t es) {
    if (ver <= RS_SCHEMA_VERSION) return RS_OK;
    return rs_errf(errstr, es, RS_ERR_INVALID,
                   "field 'schema_version': version %u is newer than this "
                   "build (%d)", ver, RS_SCHEMA_VERSION);
}

rs_err_t rs_event_from_pb(const uint8_t *buf, size_t len, rs_event_t *ev,
                          char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    char what[48];
    rs_err_t err;

    if (!ev) return rs_errf(errstr, es, RS_ERR_INVALID, "no event");
    memset(ev, 0, sizeof(*ev));
    const Riskstream__V1__Event *m = (const Riskstream__V1__Event *)
        rs_pb_unpack(&riskstream__v1__event__descriptor, buf, len, "Event",
                     &err, errstr, es);
    if (!m) return err;
    if ((err = pb_nul_check(&riskstream__v1__event__descriptor, buf, len,
                            errstr, es)))
        return err;

    if ((err = pb_str(ev->id, sizeof(ev->id), m->id, "id", errstr, es)) ||
        (err = pb_str(ev->type, sizeof(ev->type), m->type, "type", errstr,
                      es)) ||
        (err = pb_str(ev->entity_id, sizeof(ev->entity_id), m->entity_id,
                      "entity_id", errstr, es)) ||
        (err = pb_str(ev->counterparty_id, sizeof(ev->counterparty_id),
                      m->counterparty_id, "counterparty_id", errstr, es)) ||
        (err = pb_count(m->n_numeric_fields, RS_MAX_NUMERIC,
                        "numeric_fields", errstr, es)) ||
        (err = pb_count(m->n_categorical_fields, RS_MAX_CATEG,
                        "categorical_fields", errstr, es)) ||
        (err = pb_schema(m->schema_version, errstr, es)))
        return err;
    ev->event_time_ms = m->event_time_ms;
    ev->amount = m->amount;
    for (size_t i = 0; i < m->n_numeric_fields; i++) {
        snprintf(what, sizeof(what), "numeric_fields[%zu].name", i);
        if ((err = pb_str(ev->numeric[i].name, sizeof(ev->numeric[i].name),
                          m->numeric_fields[i]->name, what, errstr, es)))
            return err;
        ev->numeric[i].value = m->numeric_fields[i]->value;
    }
    ev->n_numeric = (int)m->n_numeric_fields;
    for (size_t i = 0; i < m->n_categorical_fields; i++) {
        snprintf(what, sizeof(what), "categorical_fields[%zu].name", i);
        if ((err = pb_str(ev->categ[i].name, sizeof(ev->categ[i].name),
                          m->categorical_fields[i]->name, what, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "categorical_fields[%zu].value", i);
        if ((err = pb_str(ev->categ[i].value, sizeof(ev->categ[i].value),
                          m->categorical_fields[i]->value, what, errstr,
                          es)))
            return err;
    }
    ev->n_categ = (int)m->n_categorical_fields;
    return rs_event_validate(ev, errstr, es);
}

rs_err_t rs_label_from_pb(const uint8_t *buf, size_t len, rs_label_t *lb,
                          char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    rs_err_t err;

    if (!lb) return rs_errf(errstr, es, RS_ERR_INVALID, "no label");
    memset(lb, 0, sizeof(*lb));
    const Riskstream__V1__Label *m = (const Riskstream__V1__Label *)
        rs_pb_unpack(&riskstream__v1__label__descriptor, buf, len, "Label",
                     &err, errstr, es);
    if (!m) return err;
    if ((err = pb_nul_check(&riskstream__v1__label__descriptor, buf, len,
                            errstr, es)))
        return err;
    if ((err = pb_str(lb->event_id, sizeof(lb->event_id), m->event_id,
                      "event_id", errstr, es)) ||
        (err = pb_str(lb->entity_id, sizeof(lb->entity_id), m->entity_id,
                      "entity_id", errstr, es)) ||
        (err = pb_schema(m->schema_version, errstr, es)))
        return err;
    lb->value = m->value;
    lb->label_time_ms = m->label_time_ms;
    return rs_label_validate(lb, errstr, es);
}

static rs_err_t pb_explanation(const Riskstream__V1__Explanation *m,
                               rs_explanation_t *ex, char *errstr,
                               size_t es) {
    char what[64];
    rs_err_t err;
    if (!m) return RS_OK;
    if ((err = pb_count(m->n_attended_events, RS_MAX_ATTEND,
                        "explanation.attended_events", errstr, es)) ||
        (err = pb_count(m->n_feature_contributions, RS_MAX_CONTRIB,
                        "explanation.feature_contributions", errstr, es)) ||
        (err = pb_count(m->n_experts, RS_MAX_EXPERTS, "explanation.experts",
                        errstr, es)) ||
        (err = pb_count(m->n_reasons, RS_MAX_REASONS, "explanation.reasons",
                        errstr, es)))
        return err;
    for (size_t i = 0; i < m->n_attended_events; i++) {
        const Riskstream__V1__AttendedEvent *a = m->attended_events[i];
        rs_attended_t *at = &ex->attended[i];
        snprintf(what, sizeof(what), "explanation.attended_events[%zu]", i);
        if ((err = pb_str(at->event_id, sizeof(at->event_id), a->event_id,
                          what, errstr, es)) ||
            (err = pb_str(at->counterparty_id, sizeof(at->counterparty_id),
                          a->counterparty_id, what, errstr, es)))
            return err;
        at->event_time_ms = a->event_time_ms;
        at->amount = a->amount;
        at->weight = a->weight;
    }
    ex->n_attended = (int)m->n_attended_events;
    for (size_t i = 0; i < m->n_feature_contributions; i++) {
        const Riskstream__V1__FeatureContribution *f =
            m->feature_contributions[i];
        rs_contrib_t *fc = &ex->contrib[i];
        snprintf(what, sizeof(what),
                 "explanation.feature_contributions[%zu].name", i);
        if ((err = pb_str(fc->name, sizeof(fc->name), f->name, what, errstr,
                          es)))
            return err;
        snprintf(what, sizeof(what),
                 "explanation.feature_contributions[%zu].text", i);
        if ((err = pb_str(fc->text, sizeof(fc->text), f->text, what, errstr,
                          es)))
            return err;
        fc->value = f->value;
        fc->contribution = f->contribution;
    }
    ex->n_contrib = (int)m->n_feature_contributions;
    for (size_t i = 0; i < m->n_experts; i++) {
        ex->experts[i].expert = m->experts[i]->expert;
        ex->experts[i].gate_weight = m->experts[i]->gate_weight;
    }
    ex->n_experts = (int)m->n_experts;
    for (size_t i = 0; i < m->n_reasons; i++) {
        snprintf(what, sizeof(what), "explanation.reasons[%zu]", i);
        if ((err = pb_str(ex->reasons[i], sizeof(ex->reasons[i]),
                          m->reasons[i], what, errstr, es)))
            return err;
    }
    ex->n_reasons = (int)m->n_reasons;
    return RS_OK;
}

static rs_err_t pb_event_fields(const Riskstream__V1__EventFields *m,
                                 rs_event_fields_t *ef, char *errstr,
                                 size_t es) {
    char what[64];
    rs_err_t err;
    if (!m) return RS_OK;
    if ((err = pb_str(ef->type, sizeof(ef->type), m->type, "event.type",
                      errstr, es)) ||
        (err = pb_str(ef->counterparty_id, sizeof(ef->counterparty_id),
                      m->counterparty_id, "event.counterparty_id", errstr,
                      es)) ||
        (err = pb_count(m->n_numeric_fields, RS_MAX_NUMERIC,
                        "event.numeric_fields", errstr, es)) ||
        (err = pb_count(m->n_categorical_fields, RS_MAX_CATEG,
                        "event.categorical_fields", errstr, es)))
        return err;
    ef->amount = m->amount;
    for (size_t i = 0; i < m->n_numeric_fields; i++) {
        snprintf(what, sizeof(what), "event.numeric_fields[%zu].name", i);
        if ((err = pb_str(ef->numeric[i].name, sizeof(ef->numeric[i].name),
                          m->numeric_fields[i]->name, what, errstr, es)))
            return err;
        ef->numeric[i].value = m->numeric_fields[i]->value;
    }
    ef->n_numeric = (int)m->n_numeric_fields;
    for (size_t i = 0; i < m->n_categorical_fields; i++) {
        snprintf(what, sizeof(what), "event.categorical_fields[%zu].name", i);
        if ((err = pb_str(ef->categ[i].name, sizeof(ef->categ[i].name),
                          m->categorical_fields[i]->name, what, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "event.categorical_fields[%zu].value",
                 i);
        if ((err = pb_str(ef->categ[i].value, sizeof(ef->categ[i].value),
                          m->categorical_fields[i]->value, what, errstr,
                          es)))
            return err;
    }
    ef->n_categ = (int)m->n_categorical_fields;
    ef->present = 1;
    return RS_OK;
}

rs_err_t rs_score_from_pb(const uint8_t *buf, size_t len, rs_score_t *sc,
                          char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    rs_err_t err;

    if (!sc) return rs_errf(errstr, es, RS_ERR_INVALID, "no score");
    memset(sc, 0, sizeof(*sc));
    const Riskstream__V1__Score *m = (const Riskstream__V1__Score *)
        rs_pb_unpack(&riskstream__v1__score__descriptor, buf, len, "Score",
                     &err, errstr, es);
    if (!m) return err;
    if ((err = pb_nul_check(&riskstream__v1__score__descriptor, buf, len,
                            errstr, es)))
        return err;
    if ((err = pb_str(sc->event_id, sizeof(sc->event_id), m->event_id,
                      "event_id", errstr, es)) ||
        (err = pb_str(sc->entity_id, sizeof(sc->entity_id), m->entity_id,
                      "entity_id", errstr, es)) ||
        (err = pb_str(sc->model_version, sizeof(sc->model_version),
                      m->model_version, "model_version", errstr, es)) ||
        (err = pb_schema(m->schema_version, errstr, es)) ||
        (err = pb_explanation(m->explanation, &sc->explanation, errstr,
                              es)) ||
        (err = pb_event_fields(m->event, &sc->event, errstr, es)))
        return err;
    /* proto3 enums are open: an unknown number arrives as is. */
    if ((int)m->decision < RS_DECISION_UNSPECIFIED ||
        (int)m->decision > RS_DECISION_ALERT)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field 'decision': unknown value %d", (int)m->decision);
    sc->decision = (rs_decision_t)m->decision;
    sc->score = m->score;
    sc->event_time_ms = m->event_time_ms;
    sc->scored_at_ms = m->scored_at_ms;
    sc->latency_us = m->latency_us;
    sc->flags = m->flags;
    sc->rul = m->rul;
    sc->alert_score = m->alert_score;
    return RS_OK;
}

/* --------------------------------------------------------------- encoding */

/* protobuf-c reads strings with strlen: refuse a buffer without its NUL. */
static int pb_terminated(const char *s, size_t size) {
    return memchr(s, '\0', size) != NULL;
}
#define PB_STR(field) ((char *)(field))
#define PB_OK(field) pb_terminated((field), sizeof(field))

static int pb_pack(const ProtobufCMessage *m, uint8_t *buf, size_t size) {
    size_t need = protobuf_c_message_get_packed_size(m);
    if (!buf || need > size || need > (size_t)RS_MSG_MAX) return -1;
    return (int)protobuf_c_message_pack(m, buf);
}

int rs_event_to_pb(const rs_event_t *ev, uint8_t *buf, size_t size) {
    Riskstream__V1__Event m = RISKSTREAM__V1__EVENT__INIT;
    Riskstream__V1__NumericField nf[RS_MAX_NUMERIC];
    Riskstream__V1__NumericField *nfp[RS_MAX_NUMERIC];
    Riskstream__V1__CategoricalField cf[RS_MAX_CATEG];
    Riskstream__V1__CategoricalField *cfp[RS_MAX_CATEG];

    if (!ev || ev->n_numeric < 0 || ev->n_numeric > RS_MAX_NUMERIC ||
        ev->n_categ < 0 || ev->n_categ > RS_MAX_CATEG || !PB_OK(ev->id) ||
        !PB_OK(ev->type) || !PB_OK(ev->entity_id) ||
        !PB_OK(ev->counterparty_id))
        return -1;
    m.id = PB_STR(ev->id);
    m.type = PB_STR(ev->type);
    m.entity_id = PB_STR(ev->entity_id);
    m.counterparty_id = PB_STR(ev->counterparty_id);
    m.event_time_ms = ev->event_time_ms;
    m.amount = ev->amount;
    for (int i = 0; i < ev->n_numeric; i++) {
        if (!PB_OK(ev->numeric[i].name)) return -1;
        riskstream__v1__numeric_field__init(&nf[i]);
        nf[i].name = PB_STR(ev->numeric[i].name);
        nf[i].value = ev->numeric[i].value;
        nfp[i] = &nf[i];
    }
    m.n_numeric_fields = (size_t)ev->n_numeric;
    m.numeric_fields = nfp;
    for (int i = 0; i < ev->n_categ; i++) {
        if (!PB_OK(ev->categ[i].name) || !PB_OK(ev->categ[i].value))
            return -1;
        riskstream__v1__categorical_field__init(&cf[i]);
        cf[i].name = PB_STR(ev->categ[i].name);
        cf[i].value = PB_STR(ev->categ[i].value);
        cfp[i] = &cf[i];
    }
    m.n_categorical_fields = (size_t)ev->n_categ;
    m.categorical_fields = cfp;
    m.schema_version = RS_SCHEMA_VERSION;
    return pb_pack(&m.base, buf, size);
}

int rs_label_to_pb(const rs_label_t *lb, uint8_t *buf, size_t size) {
    Riskstream__V1__Label m = RISKSTREAM__V1__LABEL__INIT;
    if (!lb || !PB_OK(lb->event_id) || !PB_OK(lb->entity_id)) return -1;
    m.event_id = PB_STR(lb->event_id);
    m.entity_id = PB_STR(lb->entity_id);
    m.value = lb->value;
    m.label_time_ms = lb->label_time_ms;
    m.schema_version = RS_SCHEMA_VERSION;
    return pb_pack(&m.base, buf, size);
}

int rs_score_to_pb(const rs_score_t *sc, uint8_t *buf, size_t size) {
    Riskstream__V1__Score m = RISKSTREAM__V1__SCORE__INIT;
    Riskstream__V1__Explanation x = RISKSTREAM__V1__EXPLANATION__INIT;
    Riskstream__V1__AttendedEvent at[RS_MAX_ATTEND];
    Riskstream__V1__AttendedEvent *atp[RS_MAX_ATTEND];
    Riskstream__V1__FeatureContribution fc[RS_MAX_CONTRIB];
    Riskstream__V1__FeatureContribution *fcp[RS_MAX_CONTRIB];
    Riskstream__V1__ExpertUse xu[RS_MAX_EXPERTS];
    Riskstream__V1__ExpertUse *xup[RS_MAX_EXPERTS];
    char *rp[RS_MAX_REASONS];
    Riskstream__V1__EventFields evf = RISKSTREAM__V1__EVENT_FIELDS__INIT;
    Riskstream__V1__NumericField nf[RS_MAX_NUMERIC];
    Riskstream__V1__NumericField *nfp[RS_MAX_NUMERIC];
    Riskstream__V1__CategoricalField cf[RS_MAX_CATEG];
    Riskstream__V1__CategoricalField *cfp[RS_MAX_CATEG];

    if (!sc) return -1;
    const rs_explanation_t *ex = &sc->explanation;
    if (ex->n_attended < 0 || ex->n_attended > RS_MAX_ATTEND ||
        ex->n_contrib < 0 || ex->n_contrib > RS_MAX_CONTRIB ||
        ex->n_experts < 0 || ex->n_experts > RS_MAX_EXPERTS ||
        ex->n_reasons < 0 || ex->n_reasons > RS_MAX_REASONS ||
        !PB_OK(sc->event_id) || !PB_OK(sc->entity_id) ||
        !PB_OK(sc->model_version))
        return -1;
    m.event_id = PB_STR(sc->event_id);
    m.entity_id = PB_STR(sc->entity_id);
    m.score = sc->score;
    m.decision = (Riskstream__V1__Decision)sc->decision;
    m.model_version = PB_STR(sc->model_version);
    m.event_time_ms = sc->event_time_ms;
    m.scored_at_ms = sc->scored_at_ms;
    m.latency_us = sc->latency_us;
    m.flags = sc->flags;
    m.rul = sc->rul;
    m.alert_score = sc->alert_score;
    m.schema_version = RS_SCHEMA_VERSION;

    for (int i = 0; i < ex->n_attended; i++) {
        const rs_attended_t *a = &ex->attended[i];
        if (!PB_OK(a->event_id) || !PB_OK(a->counterparty_id)) return -1;
        riskstream__v1__attended_event__init(&at[i]);
        at[i].event_id = PB_STR(a->event_id);
        at[i].event_time_ms = a->event_time_ms;
        at[i].amount = a->amount;
        at[i].counterparty_id = PB_STR(a->counterparty_id);
        at[i].weight = a->weight;
        atp[i] = &at[i];
    }
    for (int i = 0; i < ex->n_contrib; i++) {
        if (!PB_OK(ex->contrib[i].name) || !PB_OK(ex->contrib[i].text))
            return -1;
        riskstream__v1__feature_contribution__init(&fc[i]);
        fc[i].name = PB_STR(ex->contrib[i].name);
        fc[i].text = PB_STR(ex->contrib[i].text);
        fc[i].value = ex->contrib[i].value;
        fc[i].contribution = ex->contrib[i].contribution;
        fcp[i] = &fc[i];
    }
    for (int i = 0; i < ex->n_experts; i++) {
        riskstream__v1__expert_use__init(&xu[i]);
        xu[i].expert = ex->experts[i].expert;
        xu[i].gate_weight = ex->experts[i].gate_weight;
        xup[i] = &xu[i];
    }
    for (int i = 0; i < ex->n_reasons; i++) {
        if (!PB_OK(ex->reasons[i])) return -1;
        rp[i] = PB_STR(ex->reasons[i]);
    }
    x.n_attended_events = (size_t)ex->n_attended;
    x.attended_events = atp;
    x.n_feature_contributions = (size_t)ex->n_contrib;
    x.feature_contributions = fcp;
    x.n_experts = (size_t)ex->n_experts;
    x.experts = xup;
    x.n_reasons = (size_t)ex->n_reasons;
    x.reasons = rp;
    /* An empty explanation is left out of the wire form entirely. */
    if (ex->n_attended || ex->n_contrib || ex->n_experts || ex->n_reasons)
        m.explanation = &x;
    /* The event's fields: only when the score carries them. */
    const rs_event_fields_t *ef = &sc->event;
    if (ef->present) {
        if (ef->n_numeric < 0 || ef->n_numeric > RS_MAX_NUMERIC ||
            ef->n_categ < 0 || ef->n_categ > RS_MAX_CATEG ||
            !PB_OK(ef->type) || !PB_OK(ef->counterparty_id))
            return -1;
        evf.type = PB_STR(ef->type);
        evf.counterparty_id = PB_STR(ef->counterparty_id);
        evf.amount = ef->amount;
        for (int i = 0; i < ef->n_numeric; i++) {
            if (!PB_OK(ef->numeric[i].name)) return -1;
            riskstream__v1__numeric_field__init(&nf[i]);
            nf[i].name = PB_STR(ef->numeric[i].name);
            nf[i].value = ef->numeric[i].value;
            nfp[i] = &nf[i];
        }
        evf.n_numeric_fields = (size_t)ef->n_numeric;
        evf.numeric_fields = nfp;
        for (int i = 0; i < ef->n_categ; i++) {
            if (!PB_OK(ef->categ[i].name) || !PB_OK(ef->categ[i].value))
                return -1;
            riskstream__v1__categorical_field__init(&cf[i]);
            cf[i].name = PB_STR(ef->categ[i].name);
            cf[i].value = PB_STR(ef->categ[i].value);
            cfp[i] = &cf[i];
        }
        evf.n_categorical_fields = (size_t)ef->n_categ;
        evf.categorical_fields = cfp;
        m.event = &evf;
    }
    return pb_pack(&m.base, buf, size);
}
