/* features_replay.c -- the offline path: replay event and label files
 * through rs_features_process / rs_features_label (see features.h). */
#define _GNU_SOURCE
#include "features/features_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct rs_fe_lines_s {
    FILE *fp;
    char *buf;
    size_t cap;
    ssize_t len;
    uint64_t lineno;
} rs_fe_lines_t;

/* Next non-empty line (trailing newline trimmed); 0 at EOF, -1 on error. */
static int rs_fe_next_line(rs_fe_lines_t *l) {
    for (;;) {
        errno = 0;
        l->len = getline(&l->buf, &l->cap, l->fp);
        if (l->len < 0) return ferror(l->fp) ? -1 : 0;
        l->lineno++;
        while (l->len > 0 &&
               (l->buf[l->len - 1] == '\n' || l->buf[l->len - 1] == '\r'))
            l->buf[--l->len] = '\0';
        if (l->len > 0) return 1;
    }
}

/* Run-to-failure input: each unit's last cycle (a first pass over the
 * file), open addressing on the unit number.  Offline path. */
typedef struct rs_fe_last_s {
    int64_t *unit, *cycle;   /* [mask + 1]; unit -1 = empty */
    size_t mask, n;
} rs_fe_last_t;

static int64_t *rs_fe_last_slot(rs_fe_last_t *t, int64_t unit) {
    size_t i = (size_t)((uint64_t)unit * 0x9e3779b97f4a7c15ull >> 20) & t->mask;
    while (t->unit[i] != -1 && t->unit[i] != unit) i = (i + 1) & t->mask;
    return &t->cycle[i];
}

static void rs_fe_last_put(rs_fe_last_t *t, int64_t unit, int64_t cycle) {
    if ((t->n + 1) * 2 > t->mask + 1) { /* grow */
        rs_fe_last_t g;
        g.mask = t->mask ? t->mask * 2 + 1 : 1023;
        g.n = 0;
        g.unit = rs_malloc((g.mask + 1) * sizeof(int64_t));
        g.cycle = rs_malloc((g.mask + 1) * sizeof(int64_t));
        for (size_t i = 0; i <= g.mask; i++) g.unit[i] = g.cycle[i] = -1;
        for (size_t i = 0; t->mask && i <= t->mask; i++)
            if (t->unit[i] != -1) rs_fe_last_put(&g, t->unit[i], t->cycle[i]);
        rs_free(t->unit);
        rs_free(t->cycle);
        *t = g;
    }
    int64_t *c = rs_fe_last_slot(t, unit);
    size_t i = (size_t)(c - t->cycle);
    if (t->unit[i] == -1) {
        t->unit[i] = unit;
        *c = cycle;
        t->n++;
    } else if (cycle > *c) {
        *c = cycle;
    }
}

/* Column labels waiting for their visible time: a min-heap on (time,
 * seq).  Offline path: it grows as needed. */
typedef struct rs_fe_pend_s {
    int64_t at;
    uint64_t seq;
    rs_label_t lb;
} rs_fe_pend_t;

typedef struct rs_fe_heap_s {
    rs_fe_pend_t *v;
    size_t n, cap;
    uint64_t seq;
} rs_fe_heap_t;

static int rs_fe_pend_less(const rs_fe_pend_t *a, const rs_fe_pend_t *b) {
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void rs_fe_heap_push(rs_fe_heap_t *h, const rs_label_t *lb, int64_t at) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->v = rs_realloc(h->v, h->cap * sizeof(*h->v));
    }
    rs_fe_pend_t p = {at, h->seq++, *lb};
    size_t i = h->n++;
    while (i > 0 && rs_fe_pend_less(&p, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = p;
}

static void rs_fe_heap_pop(rs_fe_heap_t *h) {
    rs_fe_pend_t last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && rs_fe_pend_less(&h->v[c + 1], &h->v[c])) c++;
        if (!rs_fe_pend_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
}

rs_err_t rs_features_replay(rs_features_t *f, const rs_features_replay_t *rp,
                            rs_features_replay_stats_t *st, char *errstr,
                            size_t errstr_size) {
    rs_features_replay_stats_t local;
    if (!st) st = &local;
    memset(st, 0, sizeof(*st));
    if (!rp || !rp->events || !rp->row)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "replay: no events file or row callback");
    rs_fe_lines_t ev = {rp->events, NULL, 0, 0, 0};
    rs_fe_lines_t lb = {rp->labels, NULL, 0, 0, 0};
    rs_csv_map_t map;
    rs_csv_t *csv = NULL;
    rs_err_t err = RS_OK;
    char why[256];
    if (rp->map) map = *rp->map;
    else rs_csv_map_parse(&map, "", why, sizeof(why));
    float *x = rs_calloc((size_t)RS_MAX(f->dim, 1), sizeof(float));
    rs_event_t *e = rs_malloc(sizeof(*e));
    rs_label_t label;
    int have_label = 0, labels_eof = !rp->labels;
    const int col = rp->column_labels && !rp->labels && rp->format != 0;
    rs_fe_heap_t heap = {NULL, 0, 0, 0};
    uint64_t next_progress = 1 << 20;
    rs_fe_last_t last = {NULL, NULL, 0, 0};
    rs_rtf_conf_t rtf;
    if (rp->format == 3) {
        if (rp->rtf) rtf = *rp->rtf;
        else rs_rtf_conf_init(&rtf);
    }
    /* maintenance, label column: each machine's open run of positives
     * (hash -> event time of its latest positive, INT64_MIN: none) */
    rs_fe_last_t runs = {NULL, NULL, 0, 0};
    const int mrun = rp->maintenance && col && rp->format != 3;
    if (rp->format == 3 && rtf.failures) {
        /* every unit fails at its last cycle: find them first */
        rs_event_t *tmp = rs_malloc(sizeof(*tmp));
        int r;
        while ((r = rs_fe_next_line(&ev)) > 0) {
            int64_t u, c;
            if (rs_rtf_decode(&rtf, ev.buf, (size_t)ev.len, tmp, &u, &c, why,
                              sizeof(why)) == RS_OK)
                rs_fe_last_put(&last, u, c);
        }
        rs_free(tmp);
        if (r < 0 || fseek(rp->events, 0, SEEK_SET) != 0) {
            err = rs_errf(errstr, errstr_size, r < 0 ? RS_ERR_IO : RS_ERR_INVALID,
                          "replay: run-to-failure rows with failures=last need "
                          "a file that can be read twice (not a pipe): %s",
                          strerror(errno));
            goto done;
        }
        clearerr(rp->events);
        ev.lineno = 0;
    }

    if (rp->format == 1) {
        int r = rs_fe_next_line(&ev);
        if (r <= 0) {
            err = r < 0 ? rs_errf(errstr, errstr_size, RS_ERR_IO,
                                  "replay: read error: %s", strerror(errno))
                        : rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                                  "replay: empty CSV file (no header)");
            goto done;
        }
        st->bytes += (uint64_t)ev.len + 1;
        csv = rs_csv_new(&map, ev.buf, (size_t)ev.len, why, sizeof(why));
        if (!csv) {
            err = rs_errf(errstr, errstr_size, RS_ERR_INVALID, "replay: %s", why);
            goto done;
        }
    }
    for (;;) {
        int r = rs_fe_next_line(&ev);
        if (r < 0) {
            err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                          "replay: read error in events: %s", strerror(errno));
            goto done;
        }
        if (r == 0) break;
        st->bytes += (uint64_t)ev.len + 1;
        if (rp->progress && st->bytes >= next_progress) {
            rp->progress(rp->opaque, st->bytes);
            next_progress = st->bytes + (1 << 20);
        }
        rs_err_t de;
        double lv = 0;
        int hl = 0;
        if (rp->format == 1)
            de = rs_csv_decode(csv, ev.buf, (size_t)ev.len, e, &lv, &hl, why,
                               sizeof(why));
        else if (rp->format == 2)
            de = rs_event_from_json_map(&map, ev.buf, (size_t)ev.len, e, &lv,
                                        &hl, why, sizeof(why));
        else if (rp->format == 3) {
            int64_t u, c;
            de = rs_rtf_decode(&rtf, ev.buf, (size_t)ev.len, e, &u, &c, why,
                               sizeof(why));
            if (de == RS_OK && rtf.failures && last.mask) {
                hl = 1;
                lv = *rs_fe_last_slot(&last, u) == c ? 1.0 : 0.0;
            }
        }
        else
            de = rs_event_from_json(ev.buf, (size_t)ev.len, e, why, sizeof(why));
        if (de) {
            if (!st->bad_lines++)
                snprintf(st->first_error, sizeof(st->first_error),
                         "events line %llu: %s", (unsigned long long)ev.lineno,
                         why);
            continue;
        }
        if (mrun) {
            /* as eval (rs_eval_input_maintenance): the last positive of
             * each run of a machine's positives is its failure, visible at
             * its event time + delay; the run ends at the machine's next
             * reading that is not positive */
            int64_t key = (int64_t)(rs_hash_str(e->entity_id) & INT64_MAX);
            int pos = hl && lv >= 0.5;
            int64_t *open = NULL;
            if (pos || runs.mask) {
                if (pos) rs_fe_last_put(&runs, key, INT64_MIN);
                open = rs_fe_last_slot(&runs, key);
                if (runs.unit[open - runs.cycle] != key) open = NULL;
            }
            if (open && !pos && *open != INT64_MIN) {
                rs_label_t l;
                memset(&l, 0, sizeof(l));
                rs_strlcpy(l.event_id, e->entity_id, sizeof(l.event_id));
                rs_strlcpy(l.entity_id, e->entity_id, sizeof(l.entity_id));
                l.value = 1.0;
                l.label_time_ms = *open + rp->label_delay_ms;
                rs_fe_heap_push(&heap, &l, l.label_time_ms);
                st->column_failures++;
                *open = INT64_MIN;
            }
            if (pos) *open = e->event_time_ms;
        }
        /* labels visible at or before this event, as eval applies them */
        while (heap.n && heap.v[0].at <= e->event_time_ms) {
            if (rp->format == 3 || rp->maintenance) /* a failure: the unit
                       * is repaired, never a label-aware feature */
                rs_features_report(f, &heap.v[0].lb);
            else
                rs_features_label(f, &heap.v[0].lb);
            st->labels++;
            rs_fe_heap_pop(&heap);
        }
        while (!labels_eof) {
            if (!have_label) {
                int lr = rs_fe_next_line(&lb);
                if (lr < 0) {
                    err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                                  "replay: read error in labels: %s",
                                  strerror(errno));
                    goto done;
                }
                if (lr == 0) { labels_eof = 1; break; }
                if (rs_label_from_json(lb.buf, (size_t)lb.len, &label, why,
                                       sizeof(why))) {
                    st->bad_labels++;
                    continue;
                }
                have_label = 1;
            }
            if (label.label_time_ms > e->event_time_ms) break;
            if (!rp->maintenance)
                rs_features_label(f, &label);
            else /* a machine report: the rule serve applies */
                switch (rs_features_report(f, &label)) {
                case RS_FEATURES_REPORT_FAILURE: st->failures++; break;
                case RS_FEATURES_REPORT_REPAIR: st->repairs++; break;
                default: st->ignored++; break;
                }
            st->labels++;
            have_label = 0;
        }
        uint32_t flags = 0;
        if (rs_features_process(f, e, x, &flags)) {
            if (!st->bad_lines++)
                snprintf(st->first_error, sizeof(st->first_error),
                         "events line %llu: invalid event",
                         (unsigned long long)ev.lineno);
            continue;
        }
        st->events++;
        if (flags & RS_FEATURES_FLAG_LATE) st->late++;
        if (col && hl) {
            /* as eval: a positive is fed at event time + delay (negatives
             * only mark the event labelled, which changes no feature) */
            rs_label_t l;
            memset(&l, 0, sizeof(l));
            rs_strlcpy(l.event_id, e->id, sizeof(l.event_id));
            rs_strlcpy(l.entity_id, e->entity_id, sizeof(l.entity_id));
            l.value = lv >= 0.5 ? 1.0 : 0.0;
            l.label_time_ms = e->event_time_ms + rp->label_delay_ms;
            if (l.value >= 0.5) {
                st->column_positives++;
                if (!mrun) rs_fe_heap_push(&heap, &l, l.label_time_ms);
            }
        }
        if (rp->row(rp->opaque, e, x, flags)) {
            err = RS_ERR_AGAIN;
            goto done;
        }
    }
    if (rp->progress) rp->progress(rp->opaque, st->bytes);
done:
    rs_csv_destroy(csv);
    rs_free(heap.v);
    rs_free(last.unit);
    rs_free(last.cycle);
    rs_free(runs.unit);
    rs_free(runs.cycle);
    free(ev.buf);
    free(lb.buf);
    rs_free(x);
    rs_free(e);
    return err;
}
