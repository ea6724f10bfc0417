/* combine.c -- one model across instances: knowledge vectors, the combine
 * rule and the version message (see combine.h).
 *
 * Invariants: the plan and the arithmetic only ever iterate inputs in
 * their given (instance-id) order and accumulate in double, so equal
 * inputs give equal bits on every instance; nothing here does I/O.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/combine.h"
#include "model/learnlog.h"
#include "model/model_int.h"

#define RS_CMSG_MAGIC  "RSMV"
#define RS_CMSG_FORMAT 1u

int rs_combine_id_valid(const char *id) {
    size_t len = id ? strnlen(id, RS_COMBINE_ID_MAX) : 0;
    if (len >= RS_COMBINE_ID_MAX || !rs_model_version_tag_valid(id, len))
        return 0;
    return strncmp(id, "avg", 3) != 0;
}

/* An origin: an instance id or a version name. */
static int rs_origin_valid(const char *o) {
    return rs_combine_id_valid(o) || rs_model_version_parse(o, NULL, NULL);
}

/* ------------------------------------------------------------ knowledge */

void rs_know_clear(rs_know_t *k) { k->n = 0; }

const rs_know_origin_t *rs_know_get(const rs_know_t *k, const char *origin) {
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->o[i].origin, origin)) return &k->o[i];
    return NULL;
}

rs_err_t rs_know_add(rs_know_t *k, const char *origin, uint64_t updates,
                     uint64_t labels, uint64_t obs) {
    if (!origin || !origin[0] || strlen(origin) >= RS_VERSION_MAX)
        return RS_ERR_INVALID;
    rs_know_origin_t *e = (rs_know_origin_t *)rs_know_get(k, origin);
    if (!e) {
        if (k->n >= RS_COMBINE_ORIGINS) return RS_ERR_TOOBIG;
        e = &k->o[k->n++];
        memset(e, 0, sizeof(*e));
        rs_strlcpy(e->origin, origin, sizeof(e->origin));
    }
    e->updates += updates;
    e->labels += labels;
    e->obs += obs;
    return RS_OK;
}

rs_err_t rs_know_union(rs_know_t *dst, const rs_know_t *a) {
    int add = 0;
    for (int i = 0; i < a->n; i++)
        if (!rs_know_get(dst, a->o[i].origin)) add++;
    if (dst->n + add > RS_COMBINE_ORIGINS) return RS_ERR_TOOBIG;
    for (int i = 0; i < a->n; i++) {
        rs_know_origin_t *e =
            (rs_know_origin_t *)rs_know_get(dst, a->o[i].origin);
        if (!e) {
            dst->o[dst->n++] = a->o[i];
            continue;
        }
        e->updates = RS_MAX(e->updates, a->o[i].updates);
        e->labels = RS_MAX(e->labels, a->o[i].labels);
        e->obs = RS_MAX(e->obs, a->o[i].obs);
    }
    return RS_OK;
}

uint64_t rs_know_updates(const rs_know_t *k) {
    uint64_t s = 0;
    for (int i = 0; i < k->n; i++) s += k->o[i].updates;
    return s;
}

uint64_t rs_know_labels(const rs_know_t *k) {
    uint64_t s = 0;
    for (int i = 0; i < k->n; i++) s += k->o[i].labels;
    return s;
}

uint64_t rs_know_obs(const rs_know_t *k) {
    uint64_t s = 0;
    for (int i = 0; i < k->n; i++) s += k->o[i].obs;
    return s;
}

int rs_know_within(const rs_know_t *a, const rs_know_t *b) {
    for (int i = 0; i < a->n; i++) {
        const rs_know_origin_t *x = &a->o[i], *e = rs_know_get(b, x->origin);
        if (!x->updates && !x->labels && !x->obs) continue;
        if (!e || x->updates > e->updates || x->labels > e->labels ||
            x->obs > e->obs)
            return 0;
    }
    return 1;
}

int rs_know_equal(const rs_know_t *a, const rs_know_t *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        const rs_know_origin_t *e = rs_know_get(b, a->o[i].origin);
        if (!e || e->updates != a->o[i].updates ||
            e->labels != a->o[i].labels || e->obs != a->o[i].obs)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ the rule */

/* Length of "<kind>-<8 hex>" of a valid version name. */
static size_t rs_lineage_len(const char *v) {
    return (size_t)(strchr(v, '-') - v) + 9;
}

rs_err_t rs_combine_plan(const rs_combine_input_t *in, int n, int self,
                         rs_combine_plan_t *plan, char *errstr,
                         size_t errstr_size) {
    memset(plan, 0, sizeof(*plan));
    if (n < 1 || n > RS_COMBINE_INPUTS || self < 0 || self >= n)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "combine: %d inputs (self %d): want 1 to %d", n, self,
                       RS_COMBINE_INPUTS);
    uint64_t num[RS_COMBINE_INPUTS];
    for (int j = 0; j < n; j++) {
        if (!in[j].instance || !rs_combine_id_valid(in[j].instance) ||
            !in[j].version || !in[j].know)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: input %d has no valid instance id", j);
        if (j && strcmp(in[j - 1].instance, in[j].instance) >= 0)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: instances not in strictly increasing "
                           "order ('%s' after '%s')",
                           in[j].instance, in[j - 1].instance);
        if (!rs_model_version_parse(in[j].version, &num[j], NULL))
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: '%s' of %s is not a version name",
                           in[j].version, in[j].instance);
        size_t l0 = rs_lineage_len(in[0].version);
        if (rs_lineage_len(in[j].version) != l0 ||
            strncmp(in[j].version, in[0].version, l0))
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: lineage mismatch: %s of %s is not a "
                           "version of %.*s",
                           in[j].version, in[j].instance, (int)l0,
                           in[0].version);
    }
    plan->n = n;
    rs_know_t *u = &plan->know;
    rs_know_clear(u);
    for (int j = 0; j < n; j++)
        if (rs_know_union(u, in[j].know) != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                           "combine: more than %d origins of learning",
                           RS_COMBINE_ORIGINS);
    /* an input whose knowledge another input contains adds nothing: it
     * is left out (weight 0), and of inputs with the same knowledge only
     * the one with the smallest name stays.  Only then the common part
     * (the minimum over the inputs that stay): with a stale input in the
     * minimum (an instance that left the group keeps its last version on
     * the topic), two instances with the same knowledge each had weight
     * "beyond the stale one" and averaged each other's versions under new
     * names for ever, never converging */
    int keep[RS_COMBINE_INPUTS];
    for (int j = 0; j < n; j++) {
        keep[j] = 1;
        for (int i = 0; i < n && keep[j]; i++) {
            if (i == j || !rs_know_within(in[j].know, in[i].know)) continue;
            int c = rs_know_within(in[i].know, in[j].know)
                        ? strcmp(in[i].version, in[j].version)
                        : -1; /* strictly contained in i */
            if (c < 0 || (c == 0 && i < j)) keep[j] = 0;
        }
    }
    /* exclusive learning: beyond what every input that stays contains */
    int cnt = 0;
    for (int j = 0; j < n; j++) {
        double w = 0, k = 0;
        for (int o = 0; o < u->n && keep[j]; o++) {
            uint64_t cu = UINT64_MAX, co = UINT64_MAX;
            for (int i = 0; i < n; i++) {
                if (!keep[i]) continue;
                const rs_know_origin_t *e = rs_know_get(in[i].know,
                                                        u->o[o].origin);
                cu = RS_MIN(cu, e ? e->updates : 0);
                co = RS_MIN(co, e ? e->obs : 0);
            }
            const rs_know_origin_t *e = rs_know_get(in[j].know,
                                                    u->o[o].origin);
            if (e) {
                w += (double)(e->updates - cu);
                k += (double)(e->obs - co);
            }
        }
        plan->w[j] = w;
        plan->k[j] = k;
        if (w > 0 || k > 0) cnt++;
    }
    if (cnt <= 1) {
        int pick = -1;
        for (int j = 0; j < n && cnt == 1; j++)
            if (plan->w[j] > 0 || plan->k[j] > 0) pick = j;
        if (pick < 0) { /* the same updates everywhere: one name */
            for (int j = 0; j < n; j++)
                if (keep[j] && (pick < 0 ||
                                strcmp(in[j].version, in[pick].version) < 0))
                    pick = j;
        }
        plan->pick = pick;
        plan->action = strcmp(in[pick].version, in[self].version)
                           ? RS_COMBINE_ADOPT
                           : RS_COMBINE_NONE;
        return RS_OK;
    }
    /* AVERAGE: named after what it averages */
    plan->action = RS_COMBINE_AVERAGE;
    plan->navg = cnt;
    uint64_t hi = 0, h = 0;
    for (int j = 0; j < n; j++) {
        if (!(plan->w[j] > 0 || plan->k[j] > 0)) continue;
        hi = RS_MAX(hi, num[j]);
        h = rs_hash64_seed(in[j].version, strlen(in[j].version) + 1, h);
    }
    plan->number = hi + 1;
    char v[128];
    snprintf(v, sizeof(v), "%.*s-%llu.avg%d-%08x",
             (int)rs_lineage_len(in[0].version), in[0].version,
             (unsigned long long)plan->number, cnt, (unsigned)(uint32_t)h);
    if (strlen(v) >= RS_VERSION_MAX)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "combine: version %s is too long", v);
    rs_strlcpy(plan->version, v, sizeof(plan->version));
    return RS_OK;
}

/* 1 if input j takes part in an AVERAGE. */
static int rs_plan_in(const rs_combine_plan_t *p, int j) {
    return p->w[j] > 0 || p->k[j] > 0;
}

rs_err_t rs_combine_models(rs_model_t *const *models,
                           const rs_combine_plan_t *plan,
                           const rs_model_conf_t *conf, rs_model_t **out,
                           char *errstr, size_t errstr_size) {
    *out = NULL;
    if (plan->action != RS_COMBINE_AVERAGE || plan->n < 2)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "combine: not an AVERAGE plan");
    int first = -1;
    for (int j = 0; j < plan->n; j++) {
        if (!rs_plan_in(plan, j)) continue;
        if (!models[j])
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: input %d has no model", j);
        if (first < 0) {
            first = j;
            continue;
        }
        /* one kind, architecture and feature layout */
        rs_learnlog_meta_t a, b;
        rs_model_lrec_meta(models[first], &a);
        rs_model_lrec_meta(models[j], &b);
        if (a.kind != b.kind || a.arch != b.arch || a.dim != b.dim ||
            a.names_hash != b.names_hash || a.rec_size != b.rec_size)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "combine: lineage mismatch: %s (%s, %u features) "
                           "and %s (%s, %u features) differ in kind, "
                           "architecture or features",
                           rs_model_version(models[first]),
                           rs_model_kind(models[first]), a.dim,
                           rs_model_version(models[j]),
                           rs_model_kind(models[j]), b.dim);
    }
    /* the result starts as a copy of the first input */
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_model_save_mem(models[first], &buf, &len);
    rs_model_t *m = NULL;
    rs_err_t err = rs_model_load_mem(buf, len, rs_model_version(models[first]),
                                     conf, &m, errstr, errstr_size);
    rs_free(buf);
    if (err) return err;

    rs_model_view_t vo, vi[RS_COMBINE_INPUTS];
    rs_model_view(m, &vo);
    double W = 0, K = 0;
    int cnt = 0;
    for (int j = 0; j < plan->n; j++) {
        if (!rs_plan_in(plan, j)) continue;
        rs_model_view(models[j], &vi[j]);
        if (vi[j].narr != vo.narr || vi[j].dim != vo.dim) goto mismatch;
        for (int a = 0; a < vo.narr; a++)
            if (vi[j].arr[a].n != vo.arr[a].n) goto mismatch;
        W += plan->w[j];
        K += plan->k[j];
        cnt++;
    }
    /* weights: exclusive updates (parameters), exclusive observations
     * (standardiser); equal when nobody has any */
    double cw[RS_COMBINE_INPUTS] = {0}, ck[RS_COMBINE_INPUTS] = {0};
    for (int j = 0; j < plan->n; j++) {
        if (!rs_plan_in(plan, j)) continue;
        cw[j] = W > 0 ? plan->w[j] / W : 1.0 / cnt;
        ck[j] = K > 0 ? plan->k[j] / K : cw[j];
    }
    for (int a = 0; a < vo.narr; a++) {
        const size_t n = vo.arr[a].n;
        const int avg_of = vo.arr[a].avg_of;
        for (size_t i = 0; i < n; i++) {
            double acc = 0;
            for (int j = 0; j < plan->n; j++) {
                if (!rs_plan_in(plan, j)) continue;
                /* before its first step a model's average is its weights */
                int src = avg_of >= 0 && !*vi[j].avn ? avg_of : a;
                acc += cw[j] * (vi[j].arr[src].f32
                                    ? (double)vi[j].arr[src].f32[i]
                                    : vi[j].arr[src].f64[i]);
            }
            if (vo.arr[a].f32) vo.arr[a].f32[i] = (float)acc;
            else vo.arr[a].f64[i] = acc;
        }
    }
    /* the standardiser: pooled mean and variance */
    uint64_t nobs = rs_know_obs(&plan->know), nmax = 0;
    int64_t tlast = INT64_MIN, avt = INT64_MIN;
    uint64_t pos = 0, neg = 0, hneg = 0, avn = 0, opt_t = 0;
    for (int j = 0; j < plan->n; j++) {
        if (!rs_plan_in(plan, j)) continue;
        nmax = RS_MAX(nmax, *vi[j].nobs);
        tlast = RS_MAX(tlast, *vi[j].std_tlast);
        avt = RS_MAX(avt, *vi[j].avt);
        pos = RS_MAX(pos, *vi[j].positives);
        neg = RS_MAX(neg, *vi[j].negatives);
        hneg = RS_MAX(hneg, *vi[j].horizon_negatives);
        avn = RS_MAX(avn, *vi[j].avn);
        opt_t = RS_MAX(opt_t, *vi[j].opt_t);
    }
    if (nobs < nmax) nobs = nmax;
    for (int i = 0; i < vo.dim; i++) {
        double mean = 0, var = 0;
        for (int j = 0; j < plan->n; j++)
            if (rs_plan_in(plan, j)) mean += ck[j] * vi[j].mean[i];
        for (int j = 0; j < plan->n; j++) {
            if (!rs_plan_in(plan, j)) continue;
            double vj = *vi[j].nobs ? vi[j].m2[i] / (double)*vi[j].nobs : 0;
            double d = vi[j].mean[i] - mean;
            var += ck[j] * (vj + d * d);
        }
        vo.mean[i] = mean;
        vo.m2[i] = var * (double)nobs;
    }
    *vo.nobs = nobs;
    *vo.std_tlast = tlast;
    *vo.updates = rs_know_updates(&plan->know);
    *vo.positives = pos;
    *vo.negatives = neg;
    *vo.horizon_negatives = hneg;
    *vo.avn = avn;
    *vo.avt = avt;
    *vo.opt_t = opt_t;
    rs_model_view_done(m);
    rs_model_set_version(m, plan->number);
    rs_model_set_version_tag(m, strchr(plan->version, '.') + 1);
    *out = m;
    return RS_OK;
mismatch:
    rs_model_destroy(m);
    return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                   "combine: lineage mismatch: the models' state arrays "
                   "differ in size");
}

/* --------------------------------------------------------- the message */

static void rs_cm_str(rs_wbuf_t *b, const char *s) {
    uint8_t l = (uint8_t)strlen(s);
    rs_wb_put(b, &l, 1);
    rs_wb_put(b, s, l);
}

rs_err_t rs_combine_msg_encode(const rs_combine_msg_t *msg, uint8_t **buf,
                               size_t *len, char *errstr, size_t errstr_size) {
    *buf = NULL;
    *len = 0;
    if (!rs_combine_id_valid(msg->instance))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "model message: bad instance id '%s'", msg->instance);
    if (!rs_model_version_parse(msg->version, NULL, NULL))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "model message: bad version '%s'", msg->version);
    if (msg->know.n < 0 || msg->know.n > RS_COMBINE_ORIGINS ||
        msg->ninputs < 0 || msg->ninputs > RS_COMBINE_INPUTS)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "model message: bad counts");
    for (int i = 0; i < msg->know.n; i++)
        if (!rs_origin_valid(msg->know.o[i].origin) ||
            msg->know.o[i].labels > msg->know.o[i].updates)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "model message: bad origin '%s'",
                           msg->know.o[i].origin);
    rs_wbuf_t b = {0};
    rs_wb_put(&b, RS_CMSG_MAGIC, 4);
    uint8_t hd[4] = {RS_CMSG_FORMAT, (uint8_t)msg->flags, 0, 0};
    rs_wb_put(&b, hd, 4);
    rs_cm_str(&b, msg->instance);
    rs_cm_str(&b, msg->version);
    rs_wb_u64(&b, (uint64_t)msg->produced_ms);
    uint8_t n2[2] = {(uint8_t)msg->know.n, (uint8_t)(msg->know.n >> 8)};
    rs_wb_put(&b, n2, 2);
    for (int i = 0; i < msg->know.n; i++) {
        rs_cm_str(&b, msg->know.o[i].origin);
        rs_wb_u64(&b, msg->know.o[i].updates);
        rs_wb_u64(&b, msg->know.o[i].labels);
        rs_wb_u64(&b, msg->know.o[i].obs);
    }
    n2[0] = (uint8_t)msg->ninputs;
    n2[1] = (uint8_t)(msg->ninputs >> 8);
    rs_wb_put(&b, n2, 2);
    for (int i = 0; i < msg->ninputs; i++) {
        rs_cm_str(&b, msg->inputs[i].version);
        rs_wb_f64(&b, msg->inputs[i].weight);
    }
    rs_wb_u64(&b, (uint64_t)msg->model_len);
    if (msg->model_len) rs_wb_put(&b, msg->model, msg->model_len);
    rs_wb_u64(&b, rs_hash64(b.p, b.len));
    *buf = b.p;
    *len = b.len;
    return RS_OK;
}

/* Bounded reader over the message. */
typedef struct rs_cm_rd_s {
    const uint8_t *p;
    size_t len, off;
} rs_cm_rd_t;

static int rs_cm_take(rs_cm_rd_t *r, size_t n, const uint8_t **out) {
    if (n > r->len - r->off) return 0;
    *out = r->p + r->off;
    r->off += n;
    return 1;
}

static int rs_cm_u64(rs_cm_rd_t *r, uint64_t *v) {
    const uint8_t *p;
    if (!rs_cm_take(r, 8, &p)) return 0;
    *v = rs_le_get64(p);
    return 1;
}

static int rs_cm_u16(rs_cm_rd_t *r, int *v) {
    const uint8_t *p;
    if (!rs_cm_take(r, 2, &p)) return 0;
    *v = p[0] | p[1] << 8;
    return 1;
}

/* A length-prefixed string into dst[size] (no NUL inside). */
static int rs_cm_str_rd(rs_cm_rd_t *r, char *dst, size_t size) {
    const uint8_t *p;
    if (!rs_cm_take(r, 1, &p)) return 0;
    size_t l = p[0];
    if (l == 0 || l >= size || !rs_cm_take(r, l, &p) || memchr(p, 0, l))
        return 0;
    memcpy(dst, p, l);
    dst[l] = '\0';
    return 1;
}

rs_err_t rs_combine_msg_decode(const void *buf, size_t len,
                               rs_combine_msg_t *msg, char *errstr,
                               size_t errstr_size) {
    rs_cm_rd_t r = {buf, len, 0};
    const uint8_t *p;
    uint64_t u;
    memset(msg, 0, sizeof(*msg));
#define BAD(...) return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT, \
                                "model message: " __VA_ARGS__)
    if (!buf || len < 8 + 8) BAD("%zu bytes is too short", len);
    /* checksum first: the rest is then at worst a writer's bug */
    if (rs_le_get64((const uint8_t *)buf + len - 8) != rs_hash64(buf, len - 8))
        BAD("checksum mismatch");
    r.len = len - 8;
    if (!rs_cm_take(&r, 8, &p) || memcmp(p, RS_CMSG_MAGIC, 4))
        BAD("bad magic");
    if (p[4] != RS_CMSG_FORMAT) BAD("format %u is not supported", p[4]);
    if (p[5] & ~(RS_COMBINE_MSG_COMBINED | RS_COMBINE_MSG_ADOPTED) ||
        p[6] || p[7])
        BAD("unknown flags");
    msg->flags = p[5];
    if (!rs_cm_str_rd(&r, msg->instance, sizeof(msg->instance)) ||
        !rs_combine_id_valid(msg->instance))
        BAD("bad instance id");
    if (!rs_cm_str_rd(&r, msg->version, sizeof(msg->version)) ||
        !rs_model_version_parse(msg->version, NULL, NULL))
        BAD("bad version name");
    if (!rs_cm_u64(&r, &u)) BAD("truncated");
    msg->produced_ms = (int64_t)u;
    int n;
    if (!rs_cm_u16(&r, &n) || n > RS_COMBINE_ORIGINS)
        BAD("bad origin count");
    for (int i = 0; i < n; i++) {
        rs_know_origin_t *o = &msg->know.o[i];
        if (!rs_cm_str_rd(&r, o->origin, sizeof(o->origin)) ||
            !rs_origin_valid(o->origin))
            BAD("bad origin %d", i);
        if (rs_know_get(&msg->know, o->origin))
            BAD("origin '%s' twice", o->origin);
        if (!rs_cm_u64(&r, &o->updates) || !rs_cm_u64(&r, &o->labels) ||
            !rs_cm_u64(&r, &o->obs))
            BAD("truncated");
        if (o->labels > o->updates)
            BAD("origin '%s': %llu labels above %llu updates", o->origin,
                (unsigned long long)o->labels,
                (unsigned long long)o->updates);
        msg->know.n = i + 1;
    }
    if (!rs_cm_u16(&r, &n) || n > RS_COMBINE_INPUTS) BAD("bad input count");
    for (int i = 0; i < n; i++) {
        if (!rs_cm_str_rd(&r, msg->inputs[i].version,
                          sizeof(msg->inputs[i].version)) ||
            !rs_model_version_parse(msg->inputs[i].version, NULL, NULL))
            BAD("bad input version %d", i);
        if (!rs_cm_u64(&r, &u)) BAD("truncated");
        double w;
        memcpy(&w, &u, 8);
        if (!(w >= 0 && w <= 1)) BAD("input weight %g outside [0, 1]", w);
        msg->inputs[i].weight = w;
        msg->ninputs = i + 1;
    }
    if (!rs_cm_u64(&r, &u)) BAD("truncated");
    if (u != r.len - r.off)
        BAD("model of %llu bytes in %zu", (unsigned long long)u,
            r.len - r.off);
    msg->model_len = (size_t)u;
    msg->model = u ? r.p + r.off : NULL;
#undef BAD
    return RS_OK;
}
