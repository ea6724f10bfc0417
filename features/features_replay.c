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
    uint64_t next_progress = 1 << 20;

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
        double lv;
        int hl;
        if (rp->format == 1)
            de = rs_csv_decode(csv, ev.buf, (size_t)ev.len, e, &lv, &hl, why,
                               sizeof(why));
        else if (rp->format == 2)
            de = rs_event_from_json_map(&map, ev.buf, (size_t)ev.len, e, &lv,
                                        &hl, why, sizeof(why));
        else
            de = rs_event_from_json(ev.buf, (size_t)ev.len, e, why, sizeof(why));
        if (de) {
            if (!st->bad_lines++)
                snprintf(st->first_error, sizeof(st->first_error),
                         "events line %llu: %s", (unsigned long long)ev.lineno,
                         why);
            continue;
        }
        /* labels that arrived before this event */
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
            if (label.label_time_ms >= e->event_time_ms) break;
            rs_features_label(f, &label);
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
        if (rp->row(rp->opaque, e, x, flags)) {
            err = RS_ERR_AGAIN;
            goto done;
        }
    }
    if (rp->progress) rp->progress(rp->opaque, st->bytes);
done:
    rs_csv_destroy(csv);
    free(ev.buf);
    free(lb.buf);
    rs_free(x);
    rs_free(e);
    return err;
}
