/* gen_file.c -- cold-path file output of the generator: JSON lines or CSV
 * events, JSON-lines labels and a ground-truth CSV.  The row encoder does
 * no I/O; rs_gen_write_file is the only function here that touches files.
 */
#include "gen_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *rs_gen_csv_header(const rs_gen_t *g) { return g->csv_header; }

/* Append a fixed-point number with `dec` decimals (values are generated
 * already rounded to that many decimals, so this is exact). */
static size_t gen_put_fixed(char *dst, double v, int dec) {
    static const int64_t pw[4] = {1, 10, 100, 1000};
    size_t n = 0;
    int64_t x = llround(v * (double)pw[dec]);
    if (x < 0) {
        dst[n++] = '-';
        x = -x;
    }
    n += gen_put_u64(dst + n, (uint64_t)(x / pw[dec]));
    if (dec > 0) {
        int64_t frac = x % pw[dec];
        dst[n++] = '.';
        for (int i = dec - 1; i >= 0; i--) {
            dst[n + (size_t)i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += (size_t)dec;
    }
    dst[n] = '\0';
    return n;
}

/* Append a CSV cell, quoted (RFC 4180) only when it needs to be. */
static size_t gen_put_cell(char *dst, const char *s) {
    size_t n = 0;
    if (!strpbrk(s, ",\"\r\n")) {
        size_t l = strlen(s);
        memcpy(dst, s, l);
        return l;
    }
    dst[n++] = '"';
    for (; *s; s++) {
        if (*s == '"') dst[n++] = '"';
        dst[n++] = *s;
    }
    dst[n++] = '"';
    return n;
}

int rs_gen_csv_row(const rs_gen_t *g, const rs_gen_rec_t *rec, char *buf,
                   size_t size) {
    /* Worst case: 4 quoted ids (2*64 each), 16 categorical (2*48), 16
     * numbers (32): well under 4 KiB. */
    char tmp[4096];
    const rs_event_t *ev = &rec->ev;
    size_t n = 0;
    if (rec->kind != RS_GEN_EVENT) return -1;
    n += gen_put_cell(tmp + n, ev->id);
    tmp[n++] = ',';
    n += gen_put_cell(tmp + n, ev->type);
    tmp[n++] = ',';
    n += gen_put_cell(tmp + n, ev->entity_id);
    tmp[n++] = ',';
    n += gen_put_cell(tmp + n, ev->counterparty_id);
    tmp[n++] = ',';
    if (ev->event_time_ms < 0) return -1;
    n += gen_put_u64(tmp + n, (uint64_t)ev->event_time_ms);
    tmp[n++] = ',';
    if (g->conf.mode == RS_GEN_MODE_CARDS) {
        n += gen_put_fixed(tmp + n, ev->amount, 2);
        for (int i = 0; i < ev->n_numeric && i < 2; i++) {
            tmp[n++] = ',';
            n += gen_put_fixed(tmp + n, ev->numeric[i].value, 0);
        }
    } else {
        tmp[n++] = '0';
        for (int i = 0; i < ev->n_numeric && i < g->n_sensors + g->n_settings;
             i++) {
            tmp[n++] = ',';
            n += gen_put_fixed(tmp + n, ev->numeric[i].value, 3);
        }
    }
    for (int i = 0; i < ev->n_categ && i < RS_MAX_CATEG; i++) {
        tmp[n++] = ',';
        n += gen_put_cell(tmp + n, ev->categ[i].value);
    }
    tmp[n++] = ',';
    tmp[n++] = rec->is_fraud ? '1' : '0';
    if (n + 1 > size) return -1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

/* ---------------------------------------------------------------- writer */

typedef struct gen_out_s {
    FILE *fp;
    const char *path;
    int is_stdout;
} gen_out_t;

static rs_err_t gen_open(gen_out_t *o, const char *path, char *errstr,
                         size_t errstr_size) {
    o->path = path;
    o->is_stdout = path && !strcmp(path, "-");
    if (!path) {
        o->fp = NULL;
        return RS_OK;
    }
    o->fp = o->is_stdout ? stdout : fopen(path, "w");
    if (!o->fp)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "gen: open %s: %s",
                       path, strerror(errno));
    if (!o->is_stdout) setvbuf(o->fp, NULL, _IOFBF, 1 << 20);
    return RS_OK;
}

/* Close (flush) and report the first error of the stream. */
static rs_err_t gen_close(gen_out_t *o, rs_err_t err, char *errstr,
                          size_t errstr_size) {
    if (!o->fp) return err;
    int bad = ferror(o->fp);
    int e = errno;
    if (o->is_stdout) {
        if (fflush(o->fp) != 0) bad = 1, e = errno;
    } else if (fclose(o->fp) != 0) {
        bad = 1;
        e = errno;
    }
    o->fp = NULL;
    if (bad && err == RS_OK)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "gen: write %s: %s",
                       o->path, strerror(e));
    return err;
}

static int gen_line(gen_out_t *o, const char *buf, int len) {
    if (len < 0) return -1;
    if (fwrite(buf, 1, (size_t)len, o->fp) != (size_t)len) return -1;
    return putc('\n', o->fp) == EOF ? -1 : 0;
}

rs_err_t rs_gen_write_file(rs_gen_t *g, rs_gen_file_fmt_t fmt,
                           const char *events_path, const char *labels_path,
                           const char *truth_path, char *errstr,
                           size_t errstr_size) {
    gen_out_t ev_out = {0}, lb_out = {0}, tr_out = {0};
    rs_err_t err = RS_OK;
    rs_gen_rec_t *rec = NULL;
    char *buf = NULL;

    if (!g || !events_path)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "gen: write_file needs a generator and an events path");
    if (fmt != RS_GEN_FILE_JSONL && fmt != RS_GEN_FILE_CSV)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "gen: unknown file format %d", (int)fmt);
    if ((err = gen_open(&ev_out, events_path, errstr, errstr_size)) != RS_OK ||
        (err = gen_open(&lb_out, labels_path, errstr, errstr_size)) != RS_OK ||
        (err = gen_open(&tr_out, truth_path, errstr, errstr_size)) != RS_OK)
        goto done;

    rec = rs_malloc(sizeof(*rec));
    buf = rs_malloc(RS_ENCODE_MAX);
    if (fmt == RS_GEN_FILE_CSV &&
        gen_line(&ev_out, g->csv_header, (int)strlen(g->csv_header)) != 0)
        goto io;
    if (tr_out.fp) {
        static const char hdr[] =
            "event_id,entity_id,event_time_ms,is_fraud,pattern,episode";
        if (gen_line(&tr_out, hdr, (int)sizeof(hdr) - 1) != 0) goto io;
    }

    while (rs_gen_next(g, rec)) {
        if (rec->kind == RS_GEN_LABEL) {
            if (!lb_out.fp) continue;
            int n = rs_label_to_json(&rec->lb, buf, RS_ENCODE_MAX);
            if (n < 0) goto enc;
            if (gen_line(&lb_out, buf, n) != 0) goto io_lb;
            continue;
        }
        int n = fmt == RS_GEN_FILE_CSV
                    ? rs_gen_csv_row(g, rec, buf, RS_ENCODE_MAX)
                    : rs_event_to_json(&rec->ev, buf, RS_ENCODE_MAX);
        if (n < 0) goto enc;
        if (gen_line(&ev_out, buf, n) != 0) goto io;
        if (tr_out.fp) {
            int m = snprintf(buf, RS_ENCODE_MAX, "%s,%s,%lld,%d,%s,%u",
                             rec->ev.id, rec->ev.entity_id,
                             (long long)rec->ev.event_time_ms, rec->is_fraud,
                             rs_gen_pattern_name(rec->pattern),
                             (unsigned)rec->episode);
            if (gen_line(&tr_out, buf, m) != 0) goto io_tr;
        }
    }
    goto done;

enc:
    err = rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                  "gen: cannot encode record %s", rec->ev.id);
    goto done;
io:
    err = rs_errf(errstr, errstr_size, RS_ERR_IO, "gen: write %s: %s",
                  events_path, strerror(errno));
    goto done;
io_lb:
    err = rs_errf(errstr, errstr_size, RS_ERR_IO, "gen: write %s: %s",
                  labels_path, strerror(errno));
    goto done;
io_tr:
    err = rs_errf(errstr, errstr_size, RS_ERR_IO, "gen: write %s: %s",
                  truth_path, strerror(errno));
done:
    err = gen_close(&ev_out, err, errstr, errstr_size);
    err = gen_close(&lb_out, err, errstr, errstr_size);
    err = gen_close(&tr_out, err, errstr, errstr_size);
    free(rec);
    free(buf);
    return err;
}
