/* eval_input.c -- the time-ordered index over an events buffer, with the
 * labels and truth joins (see eval.h).  No I/O: buffers in, records out.
 *
 * Each good record costs one rs_eval_row_t (56 bytes); the record itself
 * stays in the caller's buffer and is decoded again by rs_eval_input_get,
 * so a 30-day stream of 734k events needs ~40 MB besides the file. */
#include <stdlib.h>
#include <string.h>

#include "eval.h"

typedef struct rs_eval_row_s {
    int64_t t;            /* event time (ms)                               */
    int64_t label_time;   /* joined label's time, 0 = event time + delay   */
    uint64_t idh;         /* rs_hash_str(event id)                         */
    uint64_t off;         /* record start in buf                           */
    uint32_t len;         /* record length, line end excluded              */
    uint32_t line;        /* 1-based line of the record's start            */
    int8_t label;         /* -1 none, 0, 1 (column, or the labels file)    */
    uint8_t pattern;      /* index in patterns[], 0 = none                 */
    uint8_t lfile;        /* label came from the labels file               */
    uint8_t mtruth;       /* maintenance: fails within the horizon          */
    uint8_t mfail;        /* maintenance: the failure's own record          */
    uint64_t enth;        /* rs_hash_str(entity id)                        */
} rs_eval_row_t;

struct rs_eval_input_s {
    const char *buf;
    size_t len;
    rs_eval_format_t fmt;
    rs_csv_map_t map;
    rs_csv_t *csv;
    rs_rtf_conf_t rtf;    /* RS_EVAL_FMT_RTF */
    rs_eval_row_t *rows;  /* [n], sorted by (t, line) */
    size_t n, cap;
    uint32_t *ht;         /* open addressing: row index + 1, 0 = empty */
    size_t ht_mask;
    int labels_joined;
    int maint;            /* rs_eval_input_maintenance was applied          */
    int64_t horizon;
    int npat;
    char patterns[RS_EVAL_PATTERNS_MAX][RS_EVAL_PATTERN_LEN];
    rs_event_t ev;        /* scratch for the first pass */
    rs_eval_input_stats_t st;
};

static void rs_in_error(rs_eval_input_t *in, const char *what, uint32_t line,
                        const char *msg) {
    if (in->st.nerrors >= RS_EVAL_ERRORS_KEPT) return;
    snprintf(in->st.errors[in->st.nerrors++], sizeof(in->st.errors[0]),
             "%sline %u: %s", what, (unsigned)line, msg);
}

/* Blank: only spaces, tabs and line ends. */
static int rs_in_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Next record of buf at *pos: JSON lines split on '\n', CSV honours
 * quotes.  Sets *rec, *rlen (line end excluded) and *nl (newlines
 * consumed); returns 0 at the end. */
static int rs_in_next(const char *buf, size_t len, size_t *pos, int csv,
                      const char **rec, size_t *rlen, uint32_t *nl) {
    if (*pos >= len) return 0;
    const char *s = buf + *pos;
    size_t left = len - *pos, n;
    if (csv) {
        int complete;
        n = rs_csv_record_len(s, left, &complete);
        if (n == 0) n = left;
    } else {
        const char *e = memchr(s, '\n', left);
        n = e ? (size_t)(e - s) + 1 : left;
    }
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    *nl = k;
    *rec = s;
    size_t r = n;
    while (r > 0 && (s[r - 1] == '\n' || s[r - 1] == '\r')) r--;
    *rlen = r;
    *pos += n;
    return 1;
}

static rs_err_t rs_in_decode(rs_eval_input_t *in, const char *rec, size_t len,
                             rs_event_t *ev, double *label, int *has_label,
                             char *errstr, size_t errstr_size) {
    *has_label = 0;
    switch (in->fmt) {
    case RS_EVAL_FMT_JSONL:
        return rs_event_from_json(rec, len, ev, errstr, errstr_size);
    case RS_EVAL_FMT_JSON_MAP:
        return rs_event_from_json_map(&in->map, rec, len, ev, label, has_label,
                                      errstr, errstr_size);
    case RS_EVAL_FMT_RTF: {
        int64_t unit, cycle;
        rs_err_t e = rs_rtf_decode(&in->rtf, rec, len, ev, &unit, &cycle,
                                   errstr, errstr_size);
        if (e == RS_OK && in->rtf.failures) {
            /* a failure at the unit's last cycle (known after the first
             * pass: the rows carry it) */
            *has_label = 1;
            *label = 0;
        }
        return e;
    }
    default:
        return rs_csv_decode(in->csv, rec, len, ev, label, has_label, errstr,
                             errstr_size);
    }
}

static void rs_in_mark_last(rs_eval_input_t *in);

static int rs_in_cmp(const void *a, const void *b) {
    const rs_eval_row_t *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static rs_eval_input_t *rs_in_new(const char *buf, size_t len,
                                  rs_eval_format_t fmt,
                                  const rs_csv_map_t *map,
                                  const rs_rtf_conf_t *rtf, char *errstr,
                                  size_t errstr_size);

rs_eval_input_t *rs_eval_input_new(const char *buf, size_t len,
                                   rs_eval_format_t fmt,
                                   const rs_csv_map_t *map, char *errstr,
                                   size_t errstr_size) {
    if (fmt == RS_EVAL_FMT_RTF) {
        rs_rtf_conf_t c;
        rs_rtf_conf_init(&c);
        return rs_in_new(buf, len, fmt, map, &c, errstr, errstr_size);
    }
    return rs_in_new(buf, len, fmt, map, NULL, errstr, errstr_size);
}

rs_eval_input_t *rs_eval_input_new_rtf(const char *buf, size_t len,
                                       const rs_rtf_conf_t *rtf, char *errstr,
                                       size_t errstr_size) {
    return rs_in_new(buf, len, RS_EVAL_FMT_RTF, NULL, rtf, errstr,
                     errstr_size);
}

static rs_eval_input_t *rs_in_new(const char *buf, size_t len,
                                  rs_eval_format_t fmt,
                                  const rs_csv_map_t *map,
                                  const rs_rtf_conf_t *rtf, char *errstr,
                                  size_t errstr_size) {
    rs_eval_input_t *in = rs_calloc(1, sizeof(*in));
    if (rtf) in->rtf = *rtf;
    in->buf = buf;
    in->len = len;
    in->fmt = fmt;
    if (map) in->map = *map;
    else rs_csv_map_parse(&in->map, "", NULL, 0);
    size_t pos = 0, rlen;
    const char *rec;
    uint32_t line = 1, nl;
    char err[320];
    if (fmt == RS_EVAL_FMT_CSV) {
        /* the header: first non-blank record */
        for (;;) {
            uint32_t at = line;
            if (!rs_in_next(buf, len, &pos, 1, &rec, &rlen, &nl)) {
                rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                        "no CSV header (empty input)");
                goto fail;
            }
            line += nl;
            if (rs_in_blank(rec, rlen)) continue;
            in->csv = rs_csv_new(&in->map, rec, rlen, err, sizeof(err));
            if (!in->csv) {
                rs_errf(errstr, errstr_size, RS_ERR_INVALID, "line %u: %s",
                        (unsigned)at, err);
                goto fail;
            }
            break;
        }
    }
    int64_t prev_t = INT64_MIN;
    for (;;) {
        uint32_t at = line;
        if (!rs_in_next(buf, len, &pos, fmt == RS_EVAL_FMT_CSV, &rec, &rlen,
                        &nl))
            break;
        line += nl;
        if (rs_in_blank(rec, rlen)) continue;
        in->st.lines++;
        double label = 0;
        int has_label = 0;
        if (rs_in_decode(in, rec, rlen, &in->ev, &label, &has_label, err,
                         sizeof(err)) != RS_OK) {
            in->st.bad++;
            rs_in_error(in, "", at, err);
            continue;
        }
        if (in->n == in->cap) {
            in->cap = in->cap ? in->cap * 2 : 4096;
            in->rows = rs_realloc(in->rows, in->cap * sizeof(*in->rows));
        }
        rs_eval_row_t *r = &in->rows[in->n++];
        memset(r, 0, sizeof(*r));
        r->t = in->ev.event_time_ms;
        r->idh = rs_hash_str(in->ev.id);
        r->enth = rs_hash_str(in->ev.entity_id);
        r->off = (uint64_t)(rec - buf);
        r->len = (uint32_t)rlen;
        r->line = at;
        r->label = has_label ? (int8_t)(label >= 0.5) : -1;
        if (r->t < prev_t) in->st.out_of_order++;
        else prev_t = r->t;
    }
    in->st.events = in->n;
    if (in->st.out_of_order)
        qsort(in->rows, in->n, sizeof(*in->rows), rs_in_cmp);
    if (fmt == RS_EVAL_FMT_RTF && in->rtf.failures) rs_in_mark_last(in);
    return in;
fail:
    rs_eval_input_destroy(in);
    return NULL;
}

void rs_eval_input_destroy(rs_eval_input_t *in) {
    if (!in) return;
    rs_csv_destroy(in->csv);
    free(in->rows);
    free(in->ht);
    free(in);
}

/* Event id hash -> rows index, built on the first join. */
static void rs_in_index(rs_eval_input_t *in) {
    if (in->ht) return;
    size_t cap = 16;
    while (cap < in->n * 2) cap *= 2;
    in->ht = rs_calloc(cap, sizeof(*in->ht));
    in->ht_mask = cap - 1;
    for (size_t i = 0; i < in->n; i++) {
        size_t h = (size_t)in->rows[i].idh & in->ht_mask;
        while (in->ht[h]) h = (h + 1) & in->ht_mask;
        in->ht[h] = (uint32_t)(i + 1);
    }
}

static rs_eval_row_t *rs_in_find(rs_eval_input_t *in, const char *id,
                                 size_t idlen) {
    uint64_t idh = rs_hash64(id, idlen);
    size_t h = (size_t)idh & in->ht_mask;
    while (in->ht[h]) {
        rs_eval_row_t *r = &in->rows[in->ht[h] - 1];
        if (r->idh == idh) return r;
        h = (h + 1) & in->ht_mask;
    }
    return NULL;
}

void rs_eval_input_join_labels(rs_eval_input_t *in, const char *buf,
                               size_t len) {
    rs_in_index(in);
    in->labels_joined = 1;
    size_t pos = 0, rlen;
    const char *rec;
    uint32_t line = 1, nl;
    char err[320];
    rs_label_t lb;
    while (rs_in_next(buf, len, &pos, 0, &rec, &rlen, &nl)) {
        uint32_t at = line;
        line += nl;
        if (rs_in_blank(rec, rlen)) continue;
        if (rs_label_from_json(rec, rlen, &lb, err, sizeof(err)) != RS_OK) {
            in->st.labels_bad++;
            rs_in_error(in, "labels ", at, err);
            continue;
        }
        rs_eval_row_t *r = rs_in_find(in, lb.event_id, strlen(lb.event_id));
        if (!r) {
            in->st.labels_unknown++;
            continue;
        }
        in->st.labels++;
        r->lfile = 1;
        r->label = (int8_t)(lb.value >= 0.5);
        r->label_time = lb.label_time_ms;
    }
}

/* Cell `col` of a simple CSV row (no quoting: the truth file's ids and
 * names have no commas).  Returns its length or -1. */
static int rs_in_cell(const char *rec, size_t len, int col, const char **out) {
    const char *s = rec, *end = rec + len;
    for (int c = 0; c < col; c++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        if (!comma) return -1;
        s = comma + 1;
    }
    const char *comma = memchr(s, ',', (size_t)(end - s));
    *out = s;
    return (int)((comma ? comma : end) - s);
}

static int rs_in_col(const char *hdr, size_t len, const char *name) {
    const char *cell;
    int n;
    for (int c = 0; (n = rs_in_cell(hdr, len, c, &cell)) >= 0; c++)
        if ((size_t)n == strlen(name) && !memcmp(cell, name, (size_t)n))
            return c;
    return -1;
}

rs_err_t rs_eval_input_join_truth(rs_eval_input_t *in, const char *buf,
                                  size_t len, char *errstr,
                                  size_t errstr_size) {
    size_t pos = 0, rlen;
    const char *rec;
    uint32_t line = 1, nl;
    int cid = -1, cpat = -1;
    while (rs_in_next(buf, len, &pos, 0, &rec, &rlen, &nl)) {
        line += nl;
        if (rs_in_blank(rec, rlen)) continue;
        cid = rs_in_col(rec, rlen, "event_id");
        cpat = rs_in_col(rec, rlen, "pattern");
        break;
    }
    if (cid < 0 || cpat < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "line 1: truth header needs the columns event_id and "
                       "pattern");
    rs_in_index(in);
    if (!in->npat) {
        rs_strlcpy(in->patterns[0], "none", sizeof(in->patterns[0]));
        in->npat = 1;
    }
    while (rs_in_next(buf, len, &pos, 0, &rec, &rlen, &nl)) {
        uint32_t at = line;
        line += nl;
        if (rs_in_blank(rec, rlen)) continue;
        const char *id, *pat;
        int nid = rs_in_cell(rec, rlen, cid, &id);
        int npat = rs_in_cell(rec, rlen, cpat, &pat);
        if (nid <= 0 || npat < 0 || npat >= RS_EVAL_PATTERN_LEN) {
            in->st.truth_bad++;
            rs_in_error(in, "truth ", at, "missing event_id or pattern cell");
            continue;
        }
        rs_eval_row_t *r = rs_in_find(in, id, (size_t)nid);
        if (!r) {
            in->st.truth_unknown++;
            continue;
        }
        in->st.truth_rows++;
        int p = 0;
        if (npat > 0 && !(npat == 4 && !memcmp(pat, "none", 4))) {
            for (p = 1; p < in->npat; p++)
                if (strlen(in->patterns[p]) == (size_t)npat &&
                    !memcmp(in->patterns[p], pat, (size_t)npat))
                    break;
            if (p == in->npat) {
                if (in->npat == RS_EVAL_PATTERNS_MAX) {
                    in->st.truth_bad++;
                    rs_in_error(in, "truth ", at, "too many distinct patterns");
                    continue;
                }
                memcpy(in->patterns[p], pat, (size_t)npat);
                in->patterns[p][npat] = '\0';
                in->npat++;
            }
        }
        r->pattern = (uint8_t)p;
    }
    return RS_OK;
}

size_t rs_eval_input_count(const rs_eval_input_t *in) { return in->n; }

uint32_t rs_eval_input_line(const rs_eval_input_t *in, size_t i) {
    return i < in->n ? in->rows[i].line : 0;
}

void rs_eval_input_stats(const rs_eval_input_t *in,
                         rs_eval_input_stats_t *st) {
    *st = in->st;
    st->with_label = st->positives = 0;
    for (size_t i = 0; i < in->n; i++) {
        const rs_eval_row_t *r = &in->rows[i];
        int has = in->labels_joined ? r->lfile : r->label >= 0;
        st->with_label += (uint64_t)has;
        st->positives += (uint64_t)(has && r->label == 1);
    }
}

rs_err_t rs_eval_input_get(rs_eval_input_t *in, size_t i, rs_event_t *ev,
                           rs_eval_rec_t *rec) {
    if (i >= in->n) return RS_ERR_INVALID;
    const rs_eval_row_t *r = &in->rows[i];
    double label;
    int has_label;
    char err[320];
    rs_err_t e = rs_in_decode(in, in->buf + r->off, r->len, ev, &label,
                              &has_label, err, sizeof(err));
    if (e != RS_OK) return e;   /* decoded fine the first time: cannot be */
    memset(rec, 0, sizeof(*rec));
    rec->ev = ev;
    if (in->maint) {
        rec->label = r->mtruth;
        rec->learn = r->mfail;
        rec->failure = r->mfail;
        rec->label_time_ms = r->mfail && r->lfile ? r->label_time : 0;
    } else if (in->labels_joined) {
        rec->label = r->lfile && r->label == 1;
        rec->learn = r->lfile;
        rec->label_time_ms = r->lfile ? r->label_time : 0;
    } else {
        rec->label = r->label == 1;
        rec->learn = rec->label;
        rec->label_time_ms = 0;
    }
    rec->pattern = r->pattern ? in->patterns[r->pattern] : NULL;
    return RS_OK;
}

/* by (entity, time, position) */
static const rs_eval_row_t *rs_in_rows_cmp_base;
static int rs_in_ent_cmp(const void *a, const void *b) {
    const rs_eval_row_t *x = &rs_in_rows_cmp_base[*(const size_t *)a];
    const rs_eval_row_t *y = &rs_in_rows_cmp_base[*(const size_t *)b];
    if (x->enth != y->enth) return x->enth < y->enth ? -1 : 1;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return i < j ? -1 : i > j;  /* rows are in (time, line) order already */
}

/* Run-to-failure files: each unit fails at its last cycle, its latest
 * row: label 1 there, 0 on its other rows. */
static void rs_in_mark_last(rs_eval_input_t *in) {
    size_t *ix = rs_malloc((in->n + 1) * sizeof(*ix));
    for (size_t i = 0; i < in->n; i++) ix[i] = i;
    rs_in_rows_cmp_base = in->rows;
    qsort(ix, in->n, sizeof(*ix), rs_in_ent_cmp);
    for (size_t k = 0; k < in->n; k++) {
        rs_eval_row_t *r = &in->rows[ix[k]];
        r->label = k + 1 == in->n || in->rows[ix[k + 1]].enth != r->enth;
    }
    free(ix);
}

uint64_t rs_eval_input_maintenance(rs_eval_input_t *in, int64_t horizon_ms) {
    in->maint = 1;
    in->horizon = horizon_ms;
    size_t *ix = rs_malloc((in->n + 1) * sizeof(*ix));
    for (size_t i = 0; i < in->n; i++) ix[i] = i;
    rs_in_rows_cmp_base = in->rows;
    qsort(ix, in->n, sizeof(*ix), rs_in_ent_cmp);
    uint64_t failures = 0;
    for (size_t a = 0; a < in->n;) {
        size_t b = a;
        while (b < in->n && in->rows[ix[b]].enth == in->rows[ix[a]].enth) b++;
        /* one entity's rows [a, b) in time order: a failure is the last
         * positive of each run of positives */
        for (size_t k = a; k < b; k++) {
            rs_eval_row_t *r = &in->rows[ix[k]];
            r->mtruth = r->mfail = 0;
            int pos = r->label == 1 && (!in->labels_joined || r->lfile);
            int next_pos = 0;
            if (k + 1 < b) {
                const rs_eval_row_t *q = &in->rows[ix[k + 1]];
                next_pos = q->label == 1 && (!in->labels_joined || q->lfile);
            }
            if (pos && !next_pos) {
                r->mfail = 1;
                failures++;
            }
        }
        /* truth: within [T - H, T] of the entity's next failure */
        int64_t next_fail = INT64_MAX;
        for (size_t k = b; k-- > a;) {
            rs_eval_row_t *r = &in->rows[ix[k]];
            if (r->mfail) next_fail = r->t;
            r->mtruth = next_fail != INT64_MAX && r->t >= next_fail - horizon_ms;
        }
        a = b;
    }
    free(ix);
    return failures;
}

int rs_eval_input_failure(const rs_eval_input_t *in, size_t i, uint64_t *enth,
                          int64_t *t) {
    if (!in->maint || i >= in->n || !in->rows[i].mfail) return 0;
    *enth = in->rows[i].enth;
    *t = in->rows[i].t;
    return 1;
}

int rs_eval_format_pick(const char *format, const char *input, int has_map) {
    if (format) {
        if (!strcmp(format, "csv")) return RS_EVAL_FMT_CSV;
        if (!strcmp(format, "json-map")) return RS_EVAL_FMT_JSON_MAP;
        if (!strcmp(format, "rtf")) return RS_EVAL_FMT_RTF;
        if (strcmp(format, "jsonl") && strcmp(format, "json")) return -1;
        /* a mapping means foreign JSON */
        return has_map ? RS_EVAL_FMT_JSON_MAP : RS_EVAL_FMT_JSONL;
    }
    size_t n = strlen(input);
    if (n >= 4 && !strcmp(input + n - 4, ".csv")) return RS_EVAL_FMT_CSV;
    return has_map ? RS_EVAL_FMT_JSON_MAP : RS_EVAL_FMT_JSONL;
}
