/* features_words.c -- features in the words people use.
 *
 * rs_features_words() names feature i from its spec (key, window, offset,
 * aggregation, value) -- "payments at this merchant in the last day" --
 * and rs_features_reason() says it with its value and, where the layout
 * has a feature that gives it, the key's usual level: "7 payments in the
 * last hour, usually 0.1".  Nothing here knows a preset's feature names:
 * the words come from the spec alone, the nouns from `features.nouns`
 * (event=payment,entity=card,counterparty=merchant for the cards preset).
 *
 * Baselines are found once, at rs_features_new (rs_fe_words_new), among
 * the features of the same key without an offset and with a longer
 * duration window:
 *   - a count or velocity gives the usual rate, for counts, velocities and
 *     the time since the previous event ("usually 12 hours");
 *   - a mean of the same value gives the usual value, for the current
 *     value, the newest value and shorter-window means.
 * So the words follow whatever specs are configured.  The phrase pieces
 * of every feature (nouns, scope, window) are made once too, with their
 * lengths: wording a contribution (every explained event, 5 times)
 * appends those pieces and the numbers, formatted by rs_fmt_fixed /
 * rs_fmt_general (common/fmt.h: printf's digits without glibc's printf,
 * which is slow in the service: libquadmath's printf hooks) -- no format
 * string to parse, no strlen (ops/bench/bench_words).  The same text as
 * one rs_fmt_snprintf per case, which stays as rs_fe_reason_ref: the
 * tests compare both, and the rare aggregations (sensor baselines,
 * slopes, hour of day from sin/cos) still go through it.
 *
 * Threads: the words state is immutable after rs_features_new; both
 * functions are reentrant (the owner thread calls them while explaining,
 * but they touch no mutable state).  No allocation after creation.
 */
#include "features/features_int.h"
#include "common/fmt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define RS_FE_NOUNS_MAX 16
#define RS_FE_NOUN_MAX 40
#define RS_FE_SINCE_NONE_S 1e8 /* as in features.c: no previous event */

typedef struct rs_fe_noun_s {
    char name[RS_NAME_MAX];        /* "event", "entity", "mcc", ...        */
    char one[RS_FE_NOUN_MAX];      /* "payment"                            */
    char many[RS_FE_NOUN_MAX];     /* "payments"                           */
} rs_fe_noun_t;

/* The pieces every phrase is made of, for feature i. */
typedef struct rs_fe_ph_s {
    const rs_features_spec_t *s;
    int agg;
    char ev[RS_FE_NOUN_MAX], evs[RS_FE_NOUN_MAX]; /* event noun, 1 and many */
    char val[48];           /* the value's noun: "amount", "temperature" */
    char scope[128];         /* events of the key: "", " at this merchant" */
    char owner[128];         /* "this card's", "this merchant's"           */
    char forkey[136];        /* "for this card"                            */
    char thiskey[128];       /* "this card", "the same mcc"                */
    char fraud[RS_FE_NOUN_MAX]; /* a positive label: "fraud", "failure"    */
    char win[160];           /* " in the last hour", ""                    */
    char over[160];          /* " over the last 7 days", ""                */
    int is_amount;
    /* the field's noun (distinct, new), one and many, as rs_fe_noun
     * gives it into a buffer of RS_FE_NOUN_MAX + 8 */
    char fone[RS_FE_NOUN_MAX + 8], fmany[RS_FE_NOUN_MAX + 8];
    /* strlen of each piece above, made with them (the per-event wording
     * appends known lengths: no strlen, no format string) */
    uint16_t ev_n, evs_n, val_n, scope_n, owner_n, forkey_n, thiskey_n,
        fraud_n, win_n, over_n, fone_n, fmany_n;
} rs_fe_ph_t;

struct rs_fe_words_s {
    int nnouns;
    rs_fe_noun_t nouns[RS_FE_NOUNS_MAX];
    int16_t *rate;   /* [dim] feature giving the usual rate of events, -1 */
    int16_t *mean;   /* [dim] feature giving the usual value, -1          */
    int16_t *cnt;    /* [dim] the count of the same spec (same window), -1 */
    rs_fe_ph_t *ph;  /* [dim] the phrase pieces of each feature           */
    size_t tz_n;     /* strlen(f->conf.timezone)                          */
};

/* ------------------------------------------------------------------ nouns */

static void rs_fe_plural(const char *one, char *out, size_t size) {
    size_t n = strlen(one);
    const char *vowels = "aeiou";
    if (n >= 2 && one[n - 1] == 'y' && !strchr(vowels, one[n - 2]))
        rs_fmt_snprintf(out, size, "%.*sies", (int)(n - 1), one);
    else if (n >= 1 && (one[n - 1] == 's' || one[n - 1] == 'x' ||
                        (n >= 2 && (!strcmp(one + n - 2, "ch") ||
                                    !strcmp(one + n - 2, "sh")))))
        rs_fmt_snprintf(out, size, "%ses", one);
    else
        rs_fmt_snprintf(out, size, "%ss", one);
}

/* Parse "name=noun[/plural],..." into w (appending; a later entry for the
 * same name wins).  RS_ERR_CONFIG naming the entry. */
static rs_err_t rs_fe_nouns_parse(rs_fe_words_t *w, const char *spec,
                                  char *errstr, size_t errstr_size) {
    const char *p = spec;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (!eq || eq == b || eq + 1 == e)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.nouns: '%.*s' is not NAME=noun[/plural]",
                           (int)(e - b), b);
        const char *ne = eq;
        while (ne > b && isspace((unsigned char)ne[-1])) ne--;
        const char *vb = eq + 1;
        while (vb < e && isspace((unsigned char)*vb)) vb++;
        const char *slash = memchr(vb, '/', (size_t)(e - vb));
        const char *oe = slash ? slash : e;
        size_t nl = (size_t)(ne - b), ol = (size_t)(oe - vb),
               pl = slash ? (size_t)(e - slash - 1) : 0;
        if (!nl || nl >= RS_NAME_MAX || !ol || ol >= RS_FE_NOUN_MAX ||
            pl >= RS_FE_NOUN_MAX || (slash && !pl))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.nouns: '%.*s': name 1-%d and nouns 1-%d "
                           "characters", (int)(e - b), b, RS_NAME_MAX - 1,
                           RS_FE_NOUN_MAX - 1);
        for (const char *c = vb; c < e; c++)
            if ((unsigned char)*c < 0x20 || *c == '<' || *c == '>')
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.nouns: '%.*s': control characters "
                               "and <> are not allowed", (int)(e - b), b);
        rs_fe_noun_t *nn = NULL;
        for (int i = 0; i < w->nnouns; i++)
            if (strlen(w->nouns[i].name) == nl &&
                !memcmp(w->nouns[i].name, b, nl))
                nn = &w->nouns[i];
        if (!nn) {
            if (w->nnouns == RS_FE_NOUNS_MAX)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.nouns: more than %d entries",
                               RS_FE_NOUNS_MAX);
            nn = &w->nouns[w->nnouns++];
        }
        rs_fmt_snprintf(nn->name, sizeof(nn->name), "%.*s", (int)nl, b);
        rs_fmt_snprintf(nn->one, sizeof(nn->one), "%.*s", (int)ol, vb);
        if (slash)
            rs_fmt_snprintf(nn->many, sizeof(nn->many), "%.*s", (int)pl, slash + 1);
        else
            rs_fe_plural(nn->one, nn->many, sizeof(nn->many));
    }
    return RS_OK;
}

/* The noun of a key or field name: configured, else the name with '_' as
 * blanks ("merchant_category" -> "merchant category"). */
static const char *rs_fe_noun(const rs_fe_words_t *w, const char *name,
                              int many, char *tmp, size_t size) {
    for (int i = 0; i < w->nnouns; i++)
        if (!strcmp(w->nouns[i].name, name))
            return many ? w->nouns[i].many : w->nouns[i].one;
    char one[RS_FE_NOUN_MAX];
    rs_fmt_snprintf(one, sizeof(one), "%s", !strcmp(name, "type") ? "event type"
                                                           : name);
    for (char *c = one; *c; c++)
        if (*c == '_') *c = ' ';
    if (many) rs_fe_plural(one, tmp, size);
    else rs_fmt_snprintf(tmp, size, "%s", one);
    return tmp;
}

/* ------------------------------------------------------------- baselines */

static int rs_fe_plain_window(const rs_features_spec_t *s) {
    return s->window_ms > 0 && !s->offset_ms && !s->last_n;
}

static rs_err_t rs_fe_words_baselines(rs_features_t *f, rs_fe_words_t *w) {
    for (int i = 0; i < f->dim; i++) {
        const rs_features_spec_t *s = &f->spec[f->out_spec[i]].s;
        int a = f->out_agg[i];
        int64_t best_rate = 0, best_mean = 0;
        w->rate[i] = w->mean[i] = -1;
        for (int j = 0; j < f->dim; j++) {
            const rs_features_spec_t *t = &f->spec[f->out_spec[j]].s;
            int b = f->out_agg[j];
            if (j == i || strcmp(t->key, s->key) || !rs_fe_plain_window(t))
                continue;
            /* a longer window than the feature's own (any for the time
             * since the previous event and current values) */
            int64_t own = s->last_n || !s->window_ms ? 0 : s->window_ms;
            if (t->window_ms <= own) continue;
            /* a count that includes its own event is usable too: the rate
             * then comes from count - 1 (rs_features_reason) */
            if ((b == RS_FEATURES_AGG_COUNT ||
                 (b == RS_FEATURES_AGG_VELOCITY && !t->include_current)) &&
                (a == RS_FEATURES_AGG_COUNT || a == RS_FEATURES_AGG_VELOCITY ||
                 a == RS_FEATURES_AGG_SINCE_LAST) &&
                t->window_ms > best_rate && !t->bucket_ms) {
                best_rate = t->window_ms;
                w->rate[i] = (int16_t)j;
            }
            if (b == RS_FEATURES_AGG_MEAN && !strcmp(t->value, s->value) &&
                (a == RS_FEATURES_AGG_CURRENT ||
                 a == RS_FEATURES_AGG_CURRENT_LOG1P ||
                 a == RS_FEATURES_AGG_LAST || a == RS_FEATURES_AGG_MEAN) &&
                t->window_ms > best_mean) {
                best_mean = t->window_ms;
                w->mean[i] = (int16_t)j;
            }
        }
    }
    return RS_OK;
}

static void rs_fe_phrase(const rs_features_t *f, int i, rs_fe_ph_t *ph);

rs_err_t rs_fe_words_new(rs_features_t *f, char *errstr, size_t errstr_size) {
    static const char *const preset_nouns[] = {
        "event=payment,entity=card,counterparty=merchant,fraud=fraud",
        "event=reading,entity=machine,counterparty=site,fraud=failure",
        ("event=event,entity=entity/entities,counterparty=counterparty,"
         "fraud=fraud"),
    };
    rs_fe_words_t *w = rs_calloc(1, sizeof(*w));
    int p = f->conf.preset >= 0 && f->conf.preset <= 2 ? f->conf.preset : 2;
    rs_err_t err = rs_fe_nouns_parse(w, preset_nouns[p], errstr, errstr_size);
    if (err == RS_OK)
        err = rs_fe_nouns_parse(w, f->conf.nouns, errstr, errstr_size);
    if (err != RS_OK) {
        rs_free(w);
        return err;
    }
    w->rate = rs_calloc((size_t)RS_MAX(f->dim, 1), sizeof(*w->rate));
    w->mean = rs_calloc((size_t)RS_MAX(f->dim, 1), sizeof(*w->mean));
    w->cnt = rs_calloc((size_t)RS_MAX(f->dim, 1), sizeof(*w->cnt));
    rs_fe_words_baselines(f, w);
    /* the count of the feature's own spec: "no payments in the last day"
     * says more than "average amount 0.00" */
    for (int i = 0; i < f->dim; i++) {
        const rs_fe_cspec_t *c = &f->spec[f->out_spec[i]];
        w->cnt[i] = -1;
        for (int k = 0; k < c->nout; k++)
            if (c->agg[k] == RS_FEATURES_AGG_COUNT && c->out0 + k != i)
                w->cnt[i] = (int16_t)(c->out0 + k);
    }
    /* the phrase pieces, once: wording an event is then one snprintf */
    f->words = w;
    w->ph = rs_calloc((size_t)RS_MAX(f->dim, 1), sizeof(*w->ph));
    for (int i = 0; i < f->dim; i++) rs_fe_phrase(f, i, &w->ph[i]);
    w->tz_n = strnlen(f->conf.timezone, sizeof(f->conf.timezone));
    return RS_OK;
}

void rs_fe_words_destroy(rs_fe_words_t *w) {
    if (!w) return;
    rs_free(w->rate);
    rs_free(w->mean);
    rs_free(w->cnt);
    rs_free(w->ph);
    rs_free(w);
}

/* ---------------------------------------------------------------- phrases */

/* "hour", "10 minutes", "7 days" */
static void rs_fe_dur_words(int64_t ms, char *buf, size_t size) {
    static const struct { int64_t u; const char *n; } U[] = {
        {RS_FE_DAY_MS, "day"}, {RS_FE_HOUR_MS, "hour"}, {RS_FE_MIN_MS, "minute"},
        {1000, "second"}};
    for (size_t i = 0; i < RS_ARRAY_LEN(U); i++)
        if (ms % U[i].u == 0) {
            long long k = (long long)(ms / U[i].u);
            if (k == 1) rs_fmt_snprintf(buf, size, "%s", U[i].n);
            else rs_fmt_snprintf(buf, size, "%lld %ss", k, U[i].n);
            return;
        }
    rs_fmt_snprintf(buf, size, "%lld ms", (long long)ms);
}

/* A length of time in seconds: "45 seconds", "12 minutes", "3.5 hours". */
static void rs_fe_secs_words(double sec, char *buf, size_t size) {
    if (sec < 120) rs_fmt_snprintf(buf, size, "%.0f second%s", sec,
                            fabs(sec - 1) < .5 ? "" : "s");
    else if (sec < 7200) rs_fmt_snprintf(buf, size, "%.0f minutes", sec / 60);
    else if (sec < 172800) rs_fmt_snprintf(buf, size, "%.1f hours", sec / 3600);
    else rs_fmt_snprintf(buf, size, "%.1f days", sec / 86400);
}


static void rs_fe_phrase(const rs_features_t *f, int i, rs_fe_ph_t *ph) {
    const rs_fe_words_t *w = f->words;
    const rs_features_spec_t *s = &f->spec[f->out_spec[i]].s;
    char t1[RS_FE_NOUN_MAX + 8], t2[64];
    memset(ph, 0, sizeof(*ph));
    ph->s = s;
    ph->agg = f->out_agg[i];
    rs_fmt_snprintf(ph->ev, sizeof(ph->ev), "%s", rs_fe_noun(w, "event", 0, t1,
                                                      sizeof(t1)));
    rs_fmt_snprintf(ph->evs, sizeof(ph->evs), "%s", rs_fe_noun(w, "event", 1, t1,
                                                        sizeof(t1)));
    rs_fmt_snprintf(ph->fraud, sizeof(ph->fraud), "%s", rs_fe_noun(w, "fraud", 0, t1,
                                                            sizeof(t1)));
    ph->is_amount = !strcmp(s->value, "amount");
    rs_fmt_snprintf(ph->val, sizeof(ph->val), "%s",
             ph->is_amount ? "amount" : rs_fe_noun(w, s->value, 0, t1,
                                                   sizeof(t1)));
    const char *kn = rs_fe_noun(w, s->key, 0, t1, sizeof(t1));
    if (!strcmp(s->key, "entity")) {
        ph->scope[0] = '\0';
        rs_fmt_snprintf(ph->owner, sizeof(ph->owner), "this %s's", kn);
        rs_fmt_snprintf(ph->thiskey, sizeof(ph->thiskey), "this %s", kn);
    } else if (!strcmp(s->key, "counterparty")) {
        rs_fmt_snprintf(ph->scope, sizeof(ph->scope), " at this %s", kn);
        rs_fmt_snprintf(ph->owner, sizeof(ph->owner), "this %s's", kn);
        rs_fmt_snprintf(ph->thiskey, sizeof(ph->thiskey), "this %s", kn);
    } else {
        rs_fmt_snprintf(ph->scope, sizeof(ph->scope), " with the same %s", kn);
        rs_fmt_snprintf(ph->owner, sizeof(ph->owner), "the same %s's", kn);
        rs_fmt_snprintf(ph->thiskey, sizeof(ph->thiskey), "the same %s", kn);
    }
    rs_fmt_snprintf(ph->forkey, sizeof(ph->forkey), "for %s", ph->thiskey);
    if (s->last_n) {
        rs_fmt_snprintf(ph->win, sizeof(ph->win), " in the last %lld %s",
                 (long long)s->last_n, ph->evs);
        rs_fmt_snprintf(ph->over, sizeof(ph->over), " over the last %lld %s",
                 (long long)s->last_n, ph->evs);
    } else if (s->window_ms) {
        rs_fe_dur_words(s->window_ms, t2, sizeof(t2));
        if (s->offset_ms) {
            char o[64];
            rs_fe_dur_words(s->offset_ms, o, sizeof(o));
            rs_fmt_snprintf(ph->win, sizeof(ph->win), " in the %s%s before the last %s",
                     strchr(t2, ' ') ? "" : "1 ", t2, o);
            rs_fmt_snprintf(ph->over, sizeof(ph->over),
                     " over the %s%s before the last %s",
                     strchr(t2, ' ') ? "" : "1 ", t2, o);
        } else {
            rs_fmt_snprintf(ph->win, sizeof(ph->win), " in the last %s", t2);
            rs_fmt_snprintf(ph->over, sizeof(ph->over), " over the last %s", t2);
        }
    }
    rs_fmt_snprintf(ph->fone, sizeof(ph->fone), "%s",
                    rs_fe_noun(w, s->field, 0, t1, sizeof(t1)));
    rs_fmt_snprintf(ph->fmany, sizeof(ph->fmany), "%s",
                    rs_fe_noun(w, s->field, 1, t1, sizeof(t1)));
    ph->ev_n = (uint16_t)strlen(ph->ev);
    ph->evs_n = (uint16_t)strlen(ph->evs);
    ph->val_n = (uint16_t)strlen(ph->val);
    ph->scope_n = (uint16_t)strlen(ph->scope);
    ph->owner_n = (uint16_t)strlen(ph->owner);
    ph->forkey_n = (uint16_t)strlen(ph->forkey);
    ph->thiskey_n = (uint16_t)strlen(ph->thiskey);
    ph->fraud_n = (uint16_t)strlen(ph->fraud);
    ph->win_n = (uint16_t)strlen(ph->win);
    ph->over_n = (uint16_t)strlen(ph->over);
    ph->fone_n = (uint16_t)strlen(ph->fone);
    ph->fmany_n = (uint16_t)strlen(ph->fmany);
}

static const char *rs_fe_vfmt(const rs_fe_ph_t *ph, double v, char *buf,
                              size_t size) {
    rs_fmt_snprintf(buf, size, ph->is_amount ? "%.2f" : "%.4g", v);
    return buf;
}

/* A usual count or rate: "0.1", "2.3", "14" */
static void rs_fe_usual(double u, char *buf, size_t size) {
    if (!(u > 0)) rs_fmt_snprintf(buf, size, "0");
    else if (u < 10) rs_fmt_snprintf(buf, size, "%.2g", u);
    else rs_fmt_snprintf(buf, size, "%.0f", u);
}

int rs_features_words(const rs_features_t *f, int i, char *buf, size_t size) {
    if (!f || i < 0 || i >= f->dim) return -1;
    if (!buf || !size) return 0;
    const rs_fe_ph_t *ph;
    char t1[RS_FE_NOUN_MAX + 8];
    ph = &f->words->ph[i];
    const rs_features_spec_t *s = ph->s;
    int n;
    switch (ph->agg) {
    case RS_FEATURES_AGG_COUNT:
        n = rs_fmt_snprintf(buf, size, "%s%s%s", ph->evs, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_SUM:
        n = rs_fmt_snprintf(buf, size, "total %s%s%s", ph->val, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_MEAN:
        n = rs_fmt_snprintf(buf, size, "average %s%s%s", ph->val, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_STD:
        n = rs_fmt_snprintf(buf, size, "spread of %s%s%s", ph->val, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_MIN:
        n = rs_fmt_snprintf(buf, size, "smallest %s%s%s", ph->val, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_MAX:
        n = rs_fmt_snprintf(buf, size, "largest %s%s%s", ph->val, ph->scope, ph->win); break;
    case RS_FEATURES_AGG_COUNT_BELOW:
        n = rs_fmt_snprintf(buf, size, "%s%s with %s under %g%s", ph->evs, ph->scope,
                     ph->val, s->below, ph->win); break;
    case RS_FEATURES_AGG_DISTINCT:
        n = rs_fmt_snprintf(buf, size, "different %s%s%s",
                     rs_fe_noun(f->words, s->field, 1, t1, sizeof(t1)),
                     ph->scope, ph->win); break;
    case RS_FEATURES_AGG_NEW:
        n = rs_fmt_snprintf(buf, size, "new %s %s%s",
                     rs_fe_noun(f->words, s->field, 0, t1, sizeof(t1)),
                     ph->forkey, ph->win); break;
    case RS_FEATURES_AGG_SINCE_LAST:
        n = rs_fmt_snprintf(buf, size, "time since %s previous %s", ph->owner, ph->ev);
        break;
    case RS_FEATURES_AGG_RATIO_MEAN:
        n = rs_fmt_snprintf(buf, size, "%s vs %s average%s", ph->val, ph->owner,
                     ph->over); break;
    case RS_FEATURES_AGG_ZSCORE:
        n = rs_fmt_snprintf(buf, size, "%s in standard deviations from %s average%s",
                     ph->val, ph->owner, ph->over); break;
    case RS_FEATURES_AGG_VELOCITY:
        n = rs_fmt_snprintf(buf, size, "%s per hour%s%s", ph->evs, ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_FRAUD_COUNT:
        n = rs_fmt_snprintf(buf, size, "%s%s confirmed as %s%s", ph->evs, ph->scope,
                     ph->fraud, ph->win); break;
    case RS_FEATURES_AGG_FRAUD_RATE:
        n = rs_fmt_snprintf(buf, size, "share of %s%s confirmed as %s%s", ph->evs,
                     ph->scope, ph->fraud, ph->win); break;
    case RS_FEATURES_AGG_LAST:
        n = rs_fmt_snprintf(buf, size, "previous %s%s", ph->val, ph->scope); break;
    case RS_FEATURES_AGG_SLOPE:
        n = rs_fmt_snprintf(buf, size, "%s trend%s", ph->val, ph->over); break;
    case RS_FEATURES_AGG_DEVIATION:
        n = rs_fmt_snprintf(buf, size, "%s vs %s average%s", ph->val, ph->owner,
                     ph->over); break;
    case RS_FEATURES_AGG_BASE_DEV:
    case RS_FEATURES_AGG_BASE_Z:
        n = rs_fmt_snprintf(buf, size, "%s%s vs %s baseline", ph->val, ph->over,
                     ph->owner); break;
    case RS_FEATURES_AGG_LIFE:
        n = rs_fmt_snprintf(buf, size, "%s since new or repaired", ph->evs); break;
    case RS_FEATURES_AGG_BASE_SPREAD:
        n = rs_fmt_snprintf(buf, size, "spread of %s%s vs %s baseline", ph->val,
                     ph->over, ph->owner); break;
    case RS_FEATURES_AGG_BASE_NOISE:
        n = rs_fmt_snprintf(buf, size, "noise of %s%s vs %s baseline", ph->val,
                     ph->over, ph->owner); break;
    case RS_FEATURES_AGG_HOUR_OF_DAY:
        n = rs_fmt_snprintf(buf, size, "hour of the day (%s)", f->conf.timezone); break;
    case RS_FEATURES_AGG_DAY_OF_WEEK:
        n = rs_fmt_snprintf(buf, size, "day of the week (%s)", f->conf.timezone); break;
    case RS_FEATURES_AGG_NIGHT:
        n = rs_fmt_snprintf(buf, size, "at night, 00:00-06:00 (%s)", f->conf.timezone); break;
    case RS_FEATURES_AGG_WEEKEND:
        n = rs_fmt_snprintf(buf, size, "on a weekend (%s)", f->conf.timezone); break;
    case RS_FEATURES_AGG_HOUR_SIN:
    case RS_FEATURES_AGG_HOUR_COS:
        n = rs_fmt_snprintf(buf, size, "time of day (%s)", f->conf.timezone); break;
    default: /* CURRENT, CURRENT_LOG1P: this event's value */
        n = rs_fmt_snprintf(buf, size, "%s", ph->val); break;
    }
    if (n < 0) { buf[0] = '\0'; return 0; }
    return (size_t)n < size ? n : (int)size - 1;
}

/* The reference: rs_features_reason as it was written with
 * rs_fmt_snprintf, one format string per case.  Kept for the tests, which
 * compare both on every feature of several layouts and many values
 * (tests/features/test_features.c: test_reason_ref). */
int rs_fe_reason_ref(const rs_features_t *f, int i, const float *x,
                     char *buf, size_t size) {
    if (!f || i < 0 || i >= f->dim) return -1;
    if (!buf || !size || !x) return 0;
    const rs_fe_words_t *w = f->words;
    const rs_fe_ph_t *ph;
    char nb[48], ub[64] = "", t1[RS_FE_NOUN_MAX + 8];
    ph = &f->words->ph[i];
    const rs_features_spec_t *s = ph->s;
    double v = x[i];
    /* the usual rate of events per ms, from a longer-window count */
    double rate = -1;
    if (w->rate[i] >= 0) {
        int j = w->rate[i];
        const rs_features_spec_t *t = &f->spec[f->out_spec[j]].s;
        double c = x[j];
        if (t->include_current) c -= 1;   /* the events before this one */
        if (f->out_agg[j] == RS_FEATURES_AGG_VELOCITY)
            rate = c / (double)RS_FE_HOUR_MS;
        else
            rate = c / (double)t->window_ms;
        if (!isfinite(rate) || rate < 0) rate = -1;
    }
    double mean = NAN;
    if (w->mean[i] >= 0) mean = x[w->mean[i]];
    int n;
    /* an aggregate over an empty window: say so */
    int none = w->cnt[i] >= 0 && x[w->cnt[i]] < 0.5;
    switch (ph->agg) {
    case RS_FEATURES_AGG_SUM:
    case RS_FEATURES_AGG_MEAN:
    case RS_FEATURES_AGG_STD:
    case RS_FEATURES_AGG_MIN:
    case RS_FEATURES_AGG_MAX:
    case RS_FEATURES_AGG_RATIO_MEAN:
    case RS_FEATURES_AGG_ZSCORE:
    case RS_FEATURES_AGG_LAST:
    case RS_FEATURES_AGG_SLOPE:
    case RS_FEATURES_AGG_DEVIATION:
        if (none) {
            n = rs_fmt_snprintf(buf, size, "no %s%s%s", ph->evs, ph->scope, ph->win);
            if (n < 0) { buf[0] = '\0'; return 0; }
            return (size_t)n < size ? n : (int)size - 1;
        }
        break;
    default:
        break;
    }
    switch (ph->agg) {
    case RS_FEATURES_AGG_COUNT:
        if (rate >= 0 && s->window_ms && !s->last_n) {
            char u[32];
            rs_fe_usual(rate * (double)s->window_ms, u, sizeof(u));
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s", u);
        }
        if (v < 0.5)
            n = rs_fmt_snprintf(buf, size, "no %s%s%s%s", ph->evs, ph->scope, ph->win,
                         ub);
        else
            n = rs_fmt_snprintf(buf, size, "%.0f %s%s%s%s", v,
                         fabs(v - 1) < .5 ? ph->ev : ph->evs, ph->scope, ph->win,
                         ub);
        break;
    case RS_FEATURES_AGG_SUM:
        n = rs_fmt_snprintf(buf, size, "total %s %s%s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_MEAN:
        if (isfinite(mean)) {
            char m[32];
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s",
                     rs_fe_vfmt(ph, mean, m, sizeof(m)));
        }
        n = rs_fmt_snprintf(buf, size, "average %s %s%s%s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ph->scope, ph->win, ub);
        break;
    case RS_FEATURES_AGG_STD:
        n = rs_fmt_snprintf(buf, size, "spread of %s %s%s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_MIN:
        n = rs_fmt_snprintf(buf, size, "smallest %s %s%s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_MAX:
        n = rs_fmt_snprintf(buf, size, "largest %s %s%s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_COUNT_BELOW:
        n = rs_fmt_snprintf(buf, size, "%.0f %s%s with %s under %g%s", v,
                     fabs(v - 1) < .5 ? ph->ev : ph->evs, ph->scope, ph->val,
                     s->below, ph->win);
        break;
    case RS_FEATURES_AGG_DISTINCT:
        n = rs_fmt_snprintf(buf, size, "%.0f different %s%s%s", v,
                     rs_fe_noun(w, s->field, fabs(v - 1) >= .5, t1,
                                sizeof(t1)),
                     ph->scope, ph->win);
        break;
    case RS_FEATURES_AGG_NEW:
        n = rs_fmt_snprintf(buf, size, "%s %s %s%s", v >= .5 ? "new" : "known",
                     rs_fe_noun(w, s->field, 0, t1, sizeof(t1)), ph->forkey,
                     ph->win);
        break;
    case RS_FEATURES_AGG_SINCE_LAST: {
        double sec = expm1(v);
        if (!(sec < RS_FE_SINCE_NONE_S * 0.999)) {
            n = rs_fmt_snprintf(buf, size, "first %s of %s", ph->ev, ph->thiskey);
            break;
        }
        char d[48];
        rs_fe_secs_words(RS_MAX(sec, 0), d, sizeof(d));
        if (rate > 0) {
            char u[48];
            rs_fe_secs_words(1.0 / rate / 1000.0, u, sizeof(u));
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s", u);
        }
        n = rs_fmt_snprintf(buf, size, "%s since %s previous %s%s", d, ph->owner,
                     ph->ev, ub);
        break;
    }
    case RS_FEATURES_AGG_RATIO_MEAN:
        n = rs_fmt_snprintf(buf, size, "%s %.1fx %s average%s", ph->val, v, ph->owner,
                     ph->over);
        break;
    case RS_FEATURES_AGG_ZSCORE:
        n = rs_fmt_snprintf(buf, size, "%s %.1f standard deviations %s %s average%s",
                     ph->val, fabs(v), v < 0 ? "below" : "above", ph->owner,
                     ph->over);
        break;
    case RS_FEATURES_AGG_VELOCITY:
        if (rate >= 0) {
            char u[32];
            rs_fe_usual(rate * (double)RS_FE_HOUR_MS, u, sizeof(u));
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s", u);
        }
        n = rs_fmt_snprintf(buf, size, "%.2g %s per hour%s%s%s", v, ph->evs, ph->scope,
                     ph->win, ub);
        break;
    case RS_FEATURES_AGG_FRAUD_COUNT:
        n = rs_fmt_snprintf(buf, size, "%.0f %s%s confirmed as %s%s", v,
                     fabs(v - 1) < .5 ? ph->ev : ph->evs, ph->scope, ph->fraud,
                     ph->win);
        break;
    case RS_FEATURES_AGG_FRAUD_RATE:
        n = rs_fmt_snprintf(buf, size, "%.*f%% of %s%s confirmed as %s%s",
                     v > 0 && v < 0.01 ? 1 : 0, v * 100, ph->evs, ph->scope,
                     ph->fraud, ph->win);
        break;
    case RS_FEATURES_AGG_LAST:
        if (isfinite(mean)) {
            char m[32];
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s",
                     rs_fe_vfmt(ph, mean, m, sizeof(m)));
        }
        n = rs_fmt_snprintf(buf, size, "previous %s %s%s", ph->val,
                     rs_fe_vfmt(ph, v, nb, sizeof(nb)), ub);
        break;
    case RS_FEATURES_AGG_SLOPE:
        if (v == 0)
            n = rs_fmt_snprintf(buf, size, "%s steady%s", ph->val, ph->over);
        else
            n = rs_fmt_snprintf(buf, size, "%s %s %.3g per hour%s", ph->val,
                         v > 0 ? "rising" : "falling", fabs(v), ph->over);
        break;
    case RS_FEATURES_AGG_DEVIATION:
        n = rs_fmt_snprintf(buf, size, "%s %.3g %s %s average%s", ph->val, fabs(v),
                     v >= 0 ? "above" : "below", ph->owner, ph->over);
        break;
    case RS_FEATURES_AGG_BASE_DEV:
        n = rs_fmt_snprintf(buf, size, "%s%s %.3g %s %s baseline", ph->val, ph->over,
                     fabs(v), v >= 0 ? "above" : "below", ph->owner);
        break;
    case RS_FEATURES_AGG_BASE_Z:
        /* "temperature drifted +3.1 sd over the last 12 readings" */
        n = rs_fmt_snprintf(buf, size, "%s drifted %+.1f sd from %s baseline%s",
                     ph->val, v, ph->owner, ph->over);
        break;
    case RS_FEATURES_AGG_LIFE:
        n = rs_fmt_snprintf(buf, size, "%.0f %s since new or repaired", expm1(v),
                     ph->evs);
        break;
    case RS_FEATURES_AGG_BASE_SPREAD:
        /* "vibration 3.2x as noisy as this machine's baseline over ..." */
        n = rs_fmt_snprintf(buf, size, "%s %.2gx as noisy as %s baseline%s",
                     ph->val, exp(v), ph->owner, ph->over);
        break;
    case RS_FEATURES_AGG_BASE_NOISE: {
        /* the ratio back from the excess when the span is in readings */
        const rs_features_spec_t *s = ph->s;
        long long nd = s->last_n + (s->include_current && !s->offset_ms) - 1;
        if (v <= 0)
            n = rs_fmt_snprintf(buf, size, "%s as noisy as %s baseline%s",
                         ph->val, ph->owner, ph->over);
        else if (s->last_n && nd >= 2)
            n = rs_fmt_snprintf(buf, size, "%s %.2gx as noisy as %s baseline%s",
                         ph->val, exp(v + 3.0 * RS_FE_NOISE_K_WIN / sqrt((double)nd)),
                         ph->owner, ph->over);
        else
            n = rs_fmt_snprintf(buf, size, "%s noisier than %s baseline%s",
                         ph->val, ph->owner, ph->over);
        break;
    }
    case RS_FEATURES_AGG_HOUR_OF_DAY: {
        int h = (int)v;
        n = rs_fmt_snprintf(buf, size, "at %02d:00-%02d:59 (%s)", h, h, f->conf.timezone);
        break;
    }
    case RS_FEATURES_AGG_DAY_OF_WEEK: {
        static const char *const dn[7] = {"Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday",
                                          "Sunday"};
        int d = (int)v;
        n = rs_fmt_snprintf(buf, size, "on a %s (%s)", dn[d >= 0 && d < 7 ? d : 0],
                     f->conf.timezone);
        break;
    }
    case RS_FEATURES_AGG_NIGHT:
        n = rs_fmt_snprintf(buf, size, v >= .5 ? "at night, 00:00-06:00 (%s)"
                                        : "in the daytime (%s)",
                     f->conf.timezone);
        break;
    case RS_FEATURES_AGG_WEEKEND:
        n = rs_fmt_snprintf(buf, size, v >= .5 ? "on a weekend (%s)"
                                        : "on a weekday (%s)",
                     f->conf.timezone);
        break;
    case RS_FEATURES_AGG_HOUR_SIN:
    case RS_FEATURES_AGG_HOUR_COS: {
        /* the hour from the pair when both are declared, else this one */
        double hs = NAN, hc = NAN;
        for (int k = 0; k < f->dim; k++) {
            if (f->out_spec[k] != f->out_spec[i]) continue;
            if (f->out_agg[k] == RS_FEATURES_AGG_HOUR_SIN) hs = x[k];
            if (f->out_agg[k] == RS_FEATURES_AGG_HOUR_COS) hc = x[k];
        }
        if (isfinite(hs) && isfinite(hc)) {
            double h = atan2(hs, hc) * 24 / 6.283185307179586;
            if (h < 0) h += 24;
            int mins = (int)(h * 60 + 0.5) % 1440;
            n = rs_fmt_snprintf(buf, size, "at %02d:%02d (%s)", mins / 60, mins % 60,
                         f->conf.timezone);
        } else {
            n = rs_fmt_snprintf(buf, size, "time of day (%s)", f->conf.timezone);
        }
        break;
    }
    case RS_FEATURES_AGG_CURRENT:
    default: {
        double cur = ph->agg == RS_FEATURES_AGG_CURRENT ? v : expm1(v);
        if (isfinite(mean)) {
            char m[32];
            rs_fmt_snprintf(ub, sizeof(ub), ", usually %s",
                     rs_fe_vfmt(ph, mean, m, sizeof(m)));
        }
        n = rs_fmt_snprintf(buf, size, "%s %s%s", ph->val,
                     rs_fe_vfmt(ph, cur, nb, sizeof(nb)), ub);
        break;
    }
    }
    if (n < 0) { buf[0] = '\0'; return 0; }
    return (size_t)n < size ? n : (int)size - 1;
}

/* ------------------------------------------------- wording, per event */

/* The per-event wording appends pieces of known length into the caller's
 * buffer with snprintf's contract: what fits (size - 1 bytes) is written,
 * `len` counts the whole text.  Numbers go through rs_fmt_fixed /
 * rs_fmt_general (printf's digits, no printf).  Each case below writes
 * what rs_fe_reason_ref's format string writes, byte for byte, including
 * the clipping of the inner buffers (nb[48], ub[64], ...): the tests
 * compare both. */
typedef struct rs_fe_rb_s {
    char *buf;
    size_t size, len;
} rs_fe_rb_t;

static inline rs_fe_rb_t rb_make(char *buf, size_t size) {
    return (rs_fe_rb_t){buf, size, 0};
}

static inline __attribute__((always_inline)) void rb_put(rs_fe_rb_t *b,
                                                      const char *p,
                                                      size_t n) {
    if (b->len + 1 < b->size) {
        size_t room = b->size - 1 - b->len, k = n < room ? n : room;
        char *d = b->buf + b->len;
        if (k <= 16) { /* numbers, short pieces: no library call */
            if (k >= 8) {
                uint64_t x, y;
                memcpy(&x, p, 8);
                memcpy(&y, p + k - 8, 8);
                memcpy(d, &x, 8);
                memcpy(d + k - 8, &y, 8);
            } else if (k >= 4) {
                uint32_t x, y;
                memcpy(&x, p, 4);
                memcpy(&y, p + k - 4, 4);
                memcpy(d, &x, 4);
                memcpy(d + k - 4, &y, 4);
            } else if (k) { /* not a loop: GCC would make it a call */
                d[0] = p[0];
                d[k / 2] = p[k / 2];
                d[k - 1] = p[k - 1];
            }
        } else {
            memcpy(d, p, k);
        }
    }
    b->len += n;
}

#define RB_LIT(b, lit) rb_put((b), (lit), sizeof(lit) - 1)

static inline void rb_fixed(rs_fe_rb_t *b, double v, int prec, int plus) {
    char t[RS_FMT_PRINTF_MAX];
    rb_put(b, t, (size_t)rs_fmt_fixed(v, prec, plus, t));
}

static inline void rb_general(rs_fe_rb_t *b, double v, int prec) {
    char t[RS_FMT_PRINTF_MAX];
    rb_put(b, t, (size_t)rs_fmt_general(v, prec, t));
}

/* "%02d" as rs_fmt_snprintf writes it */
static void rb_int02(rs_fe_rb_t *b, int v) {
    char t[RS_FMT_I64_MAX + 1];
    int n = rs_fmt_i64(v, t);
    if (n == 1) rb_put(b, "0", 1);
    rb_put(b, t, (size_t)n);
}

/* NUL-terminate; the length written (snprintf's, clipped to size - 1). */
static inline size_t rb_end(rs_fe_rb_t *b) {
    size_t n = b->len < b->size ? b->len : b->size - 1;
    if (b->size) b->buf[n] = '\0';
    return n;
}

/* rs_fe_vfmt into buf[size]: its length. */
static size_t rb_vfmt(const rs_fe_ph_t *ph, double v, char *buf,
                      size_t size) {
    rs_fe_rb_t r = rb_make(buf, size);
    if (ph->is_amount) rb_fixed(&r, v, 2, 0);
    else rb_general(&r, v, 4);
    return rb_end(&r);
}

/* rs_fe_usual into buf[size] */
static size_t rb_usual(double u, char *buf, size_t size) {
    rs_fe_rb_t r = rb_make(buf, size);
    if (!(u > 0)) RB_LIT(&r, "0");
    else if (u < 10) rb_general(&r, u, 2);
    else rb_fixed(&r, u, 0, 0);
    return rb_end(&r);
}

/* rs_fe_secs_words into buf[size] */
static size_t rb_secs(double sec, char *buf, size_t size) {
    rs_fe_rb_t r = rb_make(buf, size);
    if (sec < 120) {
        rb_fixed(&r, sec, 0, 0);
        if (fabs(sec - 1) < .5) RB_LIT(&r, " second");
        else RB_LIT(&r, " seconds");
    } else if (sec < 7200) {
        rb_fixed(&r, sec / 60, 0, 0);
        RB_LIT(&r, " minutes");
    } else if (sec < 172800) {
        rb_fixed(&r, sec / 3600, 1, 0);
        RB_LIT(&r, " hours");
    } else {
        rb_fixed(&r, sec / 86400, 1, 0);
        RB_LIT(&r, " days");
    }
    return rb_end(&r);
}

/* ", usually " + text (clipped as ub[64] clips it) into ub: its length */
static size_t rb_usually(const char *t, size_t tn, char *ub, size_t size) {
    rs_fe_rb_t r = rb_make(ub, size);
    RB_LIT(&r, ", usually ");
    rb_put(&r, t, tn);
    return rb_end(&r);
}

#define RB_PH(b, ph, f) rb_put((b), (ph)->f, (ph)->f##_n)

int rs_features_reason(const rs_features_t *f, int i, const float *x,
                       char *buf, size_t size) {
    if (!f || i < 0 || i >= f->dim) return -1;
    if (!buf || !size || !x) return 0;
    const rs_fe_words_t *w = f->words;
    const rs_fe_ph_t *ph = &w->ph[i];
    const rs_features_spec_t *s = ph->s;
    switch (ph->agg) { /* the rare ones: the reference's code */
    case RS_FEATURES_AGG_SLOPE:
    case RS_FEATURES_AGG_DEVIATION:
    case RS_FEATURES_AGG_BASE_DEV:
    case RS_FEATURES_AGG_BASE_Z:
    case RS_FEATURES_AGG_LIFE:
    case RS_FEATURES_AGG_BASE_SPREAD:
    case RS_FEATURES_AGG_BASE_NOISE:
    case RS_FEATURES_AGG_HOUR_SIN:
    case RS_FEATURES_AGG_HOUR_COS:
        return rs_fe_reason_ref(f, i, x, buf, size);
    default:
        break;
    }
    char nb[48], ub[64], m[32], u[48];
    size_t ubn = 0, nbn;
    rs_fe_rb_t b = rb_make(buf, size);
    double v = x[i];
    /* the usual rate of events per ms, from a longer-window count */
    double rate = -1;
    if (w->rate[i] >= 0) {
        int j = w->rate[i];
        const rs_features_spec_t *t = &f->spec[f->out_spec[j]].s;
        double c = x[j];
        if (t->include_current) c -= 1;   /* the events before this one */
        if (f->out_agg[j] == RS_FEATURES_AGG_VELOCITY)
            rate = c / (double)RS_FE_HOUR_MS;
        else
            rate = c / (double)t->window_ms;
        if (!isfinite(rate) || rate < 0) rate = -1;
    }
    double mean = NAN;
    if (w->mean[i] >= 0) mean = x[w->mean[i]];
    /* an aggregate over an empty window: say so */
    int none = w->cnt[i] >= 0 && x[w->cnt[i]] < 0.5;
    switch (ph->agg) {
    case RS_FEATURES_AGG_SUM:
    case RS_FEATURES_AGG_MEAN:
    case RS_FEATURES_AGG_STD:
    case RS_FEATURES_AGG_MIN:
    case RS_FEATURES_AGG_MAX:
    case RS_FEATURES_AGG_RATIO_MEAN:
    case RS_FEATURES_AGG_ZSCORE:
    case RS_FEATURES_AGG_LAST:
        if (none) {
            RB_LIT(&b, "no ");
            RB_PH(&b, ph, evs);
            RB_PH(&b, ph, scope);
            RB_PH(&b, ph, win);
            return (int)rb_end(&b);
        }
        break;
    default:
        break;
    }
    switch (ph->agg) {
    case RS_FEATURES_AGG_COUNT:
        if (rate >= 0 && s->window_ms && !s->last_n) {
            size_t un = rb_usual(rate * (double)s->window_ms, m, 32);
            ubn = rb_usually(m, un, ub, sizeof(ub));
        }
        if (v < 0.5) {
            RB_LIT(&b, "no ");
            RB_PH(&b, ph, evs);
        } else {
            rb_fixed(&b, v, 0, 0);
            RB_LIT(&b, " ");
            if (fabs(v - 1) < .5) RB_PH(&b, ph, ev);
            else RB_PH(&b, ph, evs);
        }
        RB_PH(&b, ph, scope);
        RB_PH(&b, ph, win);
        rb_put(&b, ub, ubn);
        break;
    case RS_FEATURES_AGG_SUM:
    case RS_FEATURES_AGG_STD:
    case RS_FEATURES_AGG_MIN:
    case RS_FEATURES_AGG_MAX:
        if (ph->agg == RS_FEATURES_AGG_SUM) RB_LIT(&b, "total ");
        else if (ph->agg == RS_FEATURES_AGG_STD) RB_LIT(&b, "spread of ");
        else if (ph->agg == RS_FEATURES_AGG_MIN) RB_LIT(&b, "smallest ");
        else RB_LIT(&b, "largest ");
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        nbn = rb_vfmt(ph, v, nb, sizeof(nb));
        rb_put(&b, nb, nbn);
        RB_PH(&b, ph, scope);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_MEAN:
        if (isfinite(mean)) {
            size_t mn = rb_vfmt(ph, mean, m, sizeof(m));
            ubn = rb_usually(m, mn, ub, sizeof(ub));
        }
        RB_LIT(&b, "average ");
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        nbn = rb_vfmt(ph, v, nb, sizeof(nb));
        rb_put(&b, nb, nbn);
        RB_PH(&b, ph, scope);
        RB_PH(&b, ph, win);
        rb_put(&b, ub, ubn);
        break;
    case RS_FEATURES_AGG_COUNT_BELOW:
        rb_fixed(&b, v, 0, 0);
        RB_LIT(&b, " ");
        if (fabs(v - 1) < .5) RB_PH(&b, ph, ev);
        else RB_PH(&b, ph, evs);
        RB_PH(&b, ph, scope);
        RB_LIT(&b, " with ");
        RB_PH(&b, ph, val);
        RB_LIT(&b, " under ");
        rb_general(&b, s->below, 6);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_DISTINCT:
        rb_fixed(&b, v, 0, 0);
        RB_LIT(&b, " different ");
        if (fabs(v - 1) >= .5) RB_PH(&b, ph, fmany);
        else RB_PH(&b, ph, fone);
        RB_PH(&b, ph, scope);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_NEW:
        if (v >= .5) RB_LIT(&b, "new ");
        else RB_LIT(&b, "known ");
        RB_PH(&b, ph, fone);
        RB_LIT(&b, " ");
        RB_PH(&b, ph, forkey);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_SINCE_LAST: {
        double sec = expm1(v);
        if (!(sec < RS_FE_SINCE_NONE_S * 0.999)) {
            RB_LIT(&b, "first ");
            RB_PH(&b, ph, ev);
            RB_LIT(&b, " of ");
            RB_PH(&b, ph, thiskey);
            break;
        }
        char d[48];
        size_t dn = rb_secs(RS_MAX(sec, 0), d, sizeof(d));
        if (rate > 0) {
            size_t un = rb_secs(1.0 / rate / 1000.0, u, sizeof(u));
            ubn = rb_usually(u, un, ub, sizeof(ub));
        }
        rb_put(&b, d, dn);
        RB_LIT(&b, " since ");
        RB_PH(&b, ph, owner);
        RB_LIT(&b, " previous ");
        RB_PH(&b, ph, ev);
        rb_put(&b, ub, ubn);
        break;
    }
    case RS_FEATURES_AGG_RATIO_MEAN:
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        rb_fixed(&b, v, 1, 0);
        RB_LIT(&b, "x ");
        RB_PH(&b, ph, owner);
        RB_LIT(&b, " average");
        RB_PH(&b, ph, over);
        break;
    case RS_FEATURES_AGG_ZSCORE:
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        rb_fixed(&b, fabs(v), 1, 0);
        RB_LIT(&b, " standard deviations ");
        if (v < 0) RB_LIT(&b, "below ");
        else RB_LIT(&b, "above ");
        RB_PH(&b, ph, owner);
        RB_LIT(&b, " average");
        RB_PH(&b, ph, over);
        break;
    case RS_FEATURES_AGG_VELOCITY:
        if (rate >= 0) {
            size_t un = rb_usual(rate * (double)RS_FE_HOUR_MS, m, 32);
            ubn = rb_usually(m, un, ub, sizeof(ub));
        }
        rb_general(&b, v, 2);
        RB_LIT(&b, " ");
        RB_PH(&b, ph, evs);
        RB_LIT(&b, " per hour");
        RB_PH(&b, ph, scope);
        RB_PH(&b, ph, win);
        rb_put(&b, ub, ubn);
        break;
    case RS_FEATURES_AGG_FRAUD_COUNT:
        rb_fixed(&b, v, 0, 0);
        RB_LIT(&b, " ");
        if (fabs(v - 1) < .5) RB_PH(&b, ph, ev);
        else RB_PH(&b, ph, evs);
        RB_PH(&b, ph, scope);
        RB_LIT(&b, " confirmed as ");
        RB_PH(&b, ph, fraud);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_FRAUD_RATE:
        rb_fixed(&b, v * 100, v > 0 && v < 0.01 ? 1 : 0, 0);
        RB_LIT(&b, "% of ");
        RB_PH(&b, ph, evs);
        RB_PH(&b, ph, scope);
        RB_LIT(&b, " confirmed as ");
        RB_PH(&b, ph, fraud);
        RB_PH(&b, ph, win);
        break;
    case RS_FEATURES_AGG_LAST:
        if (isfinite(mean)) {
            size_t mn = rb_vfmt(ph, mean, m, sizeof(m));
            ubn = rb_usually(m, mn, ub, sizeof(ub));
        }
        RB_LIT(&b, "previous ");
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        nbn = rb_vfmt(ph, v, nb, sizeof(nb));
        rb_put(&b, nb, nbn);
        rb_put(&b, ub, ubn);
        break;
    case RS_FEATURES_AGG_HOUR_OF_DAY: {
        int h = (int)v;
        RB_LIT(&b, "at ");
        rb_int02(&b, h);
        RB_LIT(&b, ":00-");
        rb_int02(&b, h);
        RB_LIT(&b, ":59 (");
        rb_put(&b, f->conf.timezone, w->tz_n);
        RB_LIT(&b, ")");
        break;
    }
    case RS_FEATURES_AGG_DAY_OF_WEEK: {
        static const char *const dn[7] = {"Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday",
                                          "Sunday"};
        static const uint8_t dl[7] = {6, 7, 9, 8, 6, 8, 6};
        int d = (int)v;
        int k = d >= 0 && d < 7 ? d : 0;
        RB_LIT(&b, "on a ");
        rb_put(&b, dn[k], dl[k]);
        RB_LIT(&b, " (");
        rb_put(&b, f->conf.timezone, w->tz_n);
        RB_LIT(&b, ")");
        break;
    }
    case RS_FEATURES_AGG_NIGHT:
        if (v >= .5) RB_LIT(&b, "at night, 00:00-06:00 (");
        else RB_LIT(&b, "in the daytime (");
        rb_put(&b, f->conf.timezone, w->tz_n);
        RB_LIT(&b, ")");
        break;
    case RS_FEATURES_AGG_WEEKEND:
        if (v >= .5) RB_LIT(&b, "on a weekend (");
        else RB_LIT(&b, "on a weekday (");
        rb_put(&b, f->conf.timezone, w->tz_n);
        RB_LIT(&b, ")");
        break;
    case RS_FEATURES_AGG_CURRENT:
    default: {
        double cur = ph->agg == RS_FEATURES_AGG_CURRENT ? v : expm1(v);
        if (isfinite(mean)) {
            size_t mn = rb_vfmt(ph, mean, m, sizeof(m));
            ubn = rb_usually(m, mn, ub, sizeof(ub));
        }
        RB_PH(&b, ph, val);
        RB_LIT(&b, " ");
        nbn = rb_vfmt(ph, cur, nb, sizeof(nb));
        rb_put(&b, nb, nbn);
        rb_put(&b, ub, ubn);
        break;
    }
    }
    return (int)rb_end(&b);
}
