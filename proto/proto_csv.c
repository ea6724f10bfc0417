/* proto_csv.c -- CSV rows to events, through a column mapping.
 *
 * A reader (rs_csv_t) is bound to one header line: each column gets its
 * roles once (id, type, entity, counterparty, time, amount, label, or none)
 * so a row is decoded by one pass over its cells.  Unmapped columns become
 * numeric fields when a cell is a plain decimal number, otherwise
 * categorical fields; empty cells are skipped; cells beyond the per-event
 * maxima are ignored (first columns win).  Header columns with an empty
 * name (pandas' index column) are ignored.
 *
 * Quoting follows RFC 4180: a quoted cell may contain commas, newlines and
 * "" for a quote; a quote inside an unquoted cell is an error (so that
 * rs_csv_record_len and the splitter agree on where a record ends).
 * Spaces and tabs around unquoted cells are trimmed.  Input must be UTF-8.
 *
 * Memory: the reader owns a scratch buffer (unquoted cells of one row) and
 * per-column span arrays; the scratch grows to the longest row seen
 * (rows are limited to RS_MSG_MAX), so steady state does no allocation.
 *
 * Threads: a reader belongs to one thread; rs_csv_map_parse and
 * rs_csv_record_len are reentrant.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_CSV_MAX_COLS 1024

struct rs_csv_s {
    rs_csv_map_t map;
    int ncols;
    unsigned *roles;              /* [ncols] bit mask of RS_COL_* roles   */
    char (*names)[RS_NAME_MAX];   /* [ncols] header names                  */
    size_t *start, *len;          /* [ncols] cell spans in scratch         */
    char *scratch;                /* [scratch_cap] unquoted cells, NUL-sep */
    size_t scratch_cap;
};

/* ---------------------------------------------------------------- mapping */

static const struct {
    const char *key;
    size_t off;
    int required;
    const char *def;
} rs_csv_keys[] = {
    { "id", offsetof(rs_csv_map_t, id), 1, "id" },
    { "type", offsetof(rs_csv_map_t, type), 0, "type" },
    { "entity", offsetof(rs_csv_map_t, entity), 1, "entity_id" },
    { "counterparty", offsetof(rs_csv_map_t, counterparty), 0,
      "counterparty_id" },
    { "time", offsetof(rs_csv_map_t, time), 1, "event_time_ms" },
    { "amount", offsetof(rs_csv_map_t, amount), 0, "amount" },
    { "label", offsetof(rs_csv_map_t, label), 0, "label" },
};

static void rs_trim(const char **s, size_t *len) {
    while (*len && ((*s)[0] == ' ' || (*s)[0] == '\t')) { (*s)++; (*len)--; }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

rs_err_t rs_csv_map_parse(rs_csv_map_t *map, const char *spec, char *errstr,
                          size_t errstr_size) {
    size_t es = errstr_size;
    if (!map) return rs_errf(errstr, es, RS_ERR_CONFIG, "no mapping");
    memset(map, 0, sizeof(*map));
    for (size_t k = 0; k < RS_ARRAY_LEN(rs_csv_keys); k++)
        rs_strlcpy((char *)map + rs_csv_keys[k].off, rs_csv_keys[k].def,
                   RS_NAME_MAX);
    if (!spec) return RS_OK;

    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t ilen = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        p += ilen + (end ? 1 : 0);
        rs_trim(&item, &ilen);
        if (!ilen) continue;

        const char *eq = memchr(item, '=', ilen);
        if (!eq)
            return rs_errf(errstr, es, RS_ERR_CONFIG,
                           "csv mapping: '%.*s' is not key=column",
                           (int)ilen, item);
        const char *key = item, *val = eq + 1;
        size_t klen = (size_t)(eq - item), vlen = ilen - klen - 1;
        rs_trim(&key, &klen);
        rs_trim(&val, &vlen);

        size_t k;
        for (k = 0; k < RS_ARRAY_LEN(rs_csv_keys); k++)
            if (strlen(rs_csv_keys[k].key) == klen &&
                memcmp(rs_csv_keys[k].key, key, klen) == 0)
                break;
        if (k == RS_ARRAY_LEN(rs_csv_keys))
            return rs_errf(errstr, es, RS_ERR_CONFIG,
                           "csv mapping: unknown key '%.*s' (expected id, "
                           "type, entity, counterparty, time, amount, label)",
                           (int)klen, key);
        if (vlen >= RS_NAME_MAX)
            return rs_errf(errstr, es, RS_ERR_CONFIG,
                           "csv mapping: column name for '%s' too long "
                           "(%zu bytes, max %d)", rs_csv_keys[k].key, vlen,
                           RS_NAME_MAX - 1);
        if (!vlen && rs_csv_keys[k].required)
            return rs_errf(errstr, es, RS_ERR_CONFIG,
                           "csv mapping: key '%s' needs a column name",
                           rs_csv_keys[k].key);
        char *dst = (char *)map + rs_csv_keys[k].off;
        memcpy(dst, val, vlen);   /* "" means: this optional key unmapped */
        dst[vlen] = '\0';
    }
    return RS_OK;
}

/* --------------------------------------------------------------- splitting */

size_t rs_csv_record_len(const char *buf, size_t len, int *complete) {
    int quoted = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '"') quoted = !quoted;   /* "" toggles twice */
        else if (buf[i] == '\n' && !quoted) {
            if (complete) *complete = 1;
            return i + 1;
        }
    }
    if (complete) *complete = 0;
    return len;
}

/* Split one record into cells written to out (capacity >= 2 * len + 2:
 * unquoting only shrinks, plus one NUL per cell).  Spans of the first
 * `max` cells go to start[]/lens[]; *n gets the total number of cells. */
static rs_err_t csv_split(const char *line, size_t len, char *out,
                          size_t *start, size_t *lens, int max, int *n,
                          char *errstr, size_t es) {
    size_t i = 0, o = 0;
    int col = 0;

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    for (;;) {
        size_t cell = o;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return rs_errf(errstr, es, RS_ERR_INVALID,
                                   "unterminated quoted cell in column %d",
                                   col + 1);
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = line[i++];
            }
            while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
            if (i < len && line[i] != ',')
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "text after the closing quote in column %d",
                               col + 1);
        } else {
            size_t b = i;
            while (i < len && line[i] != ',') {
                if (line[i] == '"')
                    return rs_errf(errstr, es, RS_ERR_INVALID,
                                   "quote inside unquoted cell in column %d",
                                   col + 1);
                i++;
            }
            const char *s = line + b;
            size_t l = i - b;
            rs_trim(&s, &l);
            memcpy(out + o, s, l);
            o += l;
        }
        if (col < max) {
            start[col] = cell;
            lens[col] = o - cell;
        }
        out[o++] = '\0';
        col++;
        if (i >= len) break;
        i++;   /* the comma */
    }
    *n = col;
    return RS_OK;
}

/* ------------------------------------------------------------------ reader */

void rs_csv_destroy(rs_csv_t *csv) {
    if (!csv) return;
    free(csv->roles);
    free(csv->names);
    free(csv->start);
    free(csv->len);
    free(csv->scratch);
    free(csv);
}

rs_csv_t *rs_csv_new(const rs_csv_map_t *map, const char *header, size_t len,
                     char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    rs_csv_t *csv = NULL;
    char *out = NULL;
    size_t *start = NULL, *lens = NULL;
    int n = 0, maxcols = 1;

    if (!map || !header) {
        rs_errf(errstr, es, RS_ERR_INVALID, "no mapping or header");
        return NULL;
    }
    if (len > RS_MSG_MAX) {
        rs_errf(errstr, es, RS_ERR_TOOBIG,
                "CSV header of %zu bytes exceeds the limit of %d bytes", len,
                RS_MSG_MAX);
        return NULL;
    }
    if (len >= 3 && memcmp(header, "\xEF\xBB\xBF", 3) == 0) {  /* BOM */
        header += 3;
        len -= 3;
    }
    for (size_t i = 0; i < len; i++) maxcols += header[i] == ',';
    if (maxcols > RS_CSV_MAX_COLS) maxcols = RS_CSV_MAX_COLS + 1;

    /* Cells never outnumber len + 1, so 2 * len + 2 holds them all with
     * their NULs. */
    out = malloc(2 * len + 2);
    start = calloc((size_t)maxcols, sizeof(*start));
    lens = calloc((size_t)maxcols, sizeof(*lens));
    csv = calloc(1, sizeof(*csv));
    if (!out || !start || !lens || !csv) {
        rs_errf(errstr, es, RS_ERR_NOMEM, "CSV reader: no memory");
        goto fail;
    }
    if (csv_split(header, len, out, start, lens, maxcols, &n, errstr, es))
        goto fail;
    if (n > RS_CSV_MAX_COLS) {
        rs_errf(errstr, es, RS_ERR_TOOBIG, "CSV header has more than %d "
                "columns", RS_CSV_MAX_COLS);
        goto fail;
    }

    csv->map = *map;
    csv->ncols = n;
    csv->roles = calloc((size_t)n, sizeof(*csv->roles));
    csv->names = calloc((size_t)n, sizeof(*csv->names));
    csv->start = start;
    csv->len = lens;
    start = lens = NULL;
    if (!csv->roles || !csv->names) {
        rs_errf(errstr, es, RS_ERR_NOMEM, "CSV reader: no memory");
        goto fail;
    }

    unsigned seen = 0;
    for (int c = 0; c < n; c++) {
        const char *name = out + csv->start[c];
        size_t nlen = csv->len[c];
        unsigned roles = rs_map_roles(map, name, nlen);
        if (!roles && nlen == 0) continue;   /* unnamed column: ignored */
        if (nlen >= RS_NAME_MAX) {
            rs_errf(errstr, es, RS_ERR_TOOBIG,
                    "CSV column %d: name '%.40s...' too long (%zu bytes, max "
                    "%d)", c + 1, name, nlen, RS_NAME_MAX - 1);
            goto fail;
        }
        if (rs_str_check(name, nlen + 1, "column name", 1, 1, errstr, es))
            goto fail;
        memcpy(csv->names[c], name, nlen + 1);
        csv->roles[c] = roles ? roles : (1u << RS_COL_EXTRA);
        seen |= roles;
    }

    /* Required columns must be there; an optional one only if the mapping
     * renamed it (a typo in "amount=amt" must not pass silently). */
    static const struct { int role, key; } need[] = {
        { RS_COL_ID, 0 }, { RS_COL_TYPE, 1 }, { RS_COL_ENTITY, 2 },
        { RS_COL_CPTY, 3 }, { RS_COL_TIME, 4 }, { RS_COL_AMOUNT, 5 },
        { RS_COL_LABEL, 6 },
    };
    for (size_t k = 0; k < RS_ARRAY_LEN(need); k++) {
        const char *col = (const char *)map + rs_csv_keys[need[k].key].off;
        if (seen & (1u << need[k].role)) continue;
        if (!col[0]) continue;   /* optional and unmapped */
        if (!rs_csv_keys[need[k].key].required &&
            strncmp(col, rs_csv_keys[need[k].key].def, RS_NAME_MAX) == 0)
            continue;
        rs_errf(errstr, es, RS_ERR_INVALID,
                "CSV header has no column '%.*s' (mapped to %s)",
                RS_NAME_MAX, col, rs_csv_keys[need[k].key].key);
        goto fail;
    }
    free(out);
    return csv;

fail:
    free(out);
    free(start);
    free(lens);
    rs_csv_destroy(csv);
    return NULL;
}

/* Name of column c for messages. */
static const char *csv_col(const rs_csv_t *csv, int c) {
    return csv->names[c];
}

rs_err_t rs_csv_decode(rs_csv_t *csv, const char *line, size_t len,
                       rs_event_t *ev, double *label_out, int *has_label,
                       char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    rs_err_t err;
    int n;

    if (has_label) *has_label = 0;
    if (!csv || !line || !ev)
        return rs_errf(errstr, es, RS_ERR_INVALID, "no reader, row or event");
    memset(ev, 0, sizeof(*ev));
    if (len > RS_MSG_MAX)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "CSV row of %zu bytes exceeds the limit of %d bytes",
                       len, RS_MSG_MAX);
    size_t need = 2 * len + 2;   /* cells + one NUL each, as in rs_csv_new */
    if (need > csv->scratch_cap) {
        size_t cap = RS_MAX(need, csv->scratch_cap * 2);
        char *p = realloc(csv->scratch, cap);
        if (!p) return rs_errf(errstr, es, RS_ERR_NOMEM, "CSV row: no memory");
        csv->scratch = p;
        csv->scratch_cap = cap;
    }
    if ((err = csv_split(line, len, csv->scratch, csv->start, csv->len,
                         csv->ncols, &n, errstr, es)))
        return err;
    if (n != csv->ncols)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "row has %d columns, header has %d", n, csv->ncols);

    for (int c = 0; c < n; c++) {
        unsigned roles = csv->roles[c];
        const char *s = csv->scratch + csv->start[c];
        size_t l = csv->len[c];
        const char *col = csv_col(csv, c);

        if (!roles) continue;
        if (roles & (1u << RS_COL_EXTRA)) {
            double v;
            if (!l) continue;
            if (rs_num_parse(s, l, &v) == 0) {
                if (ev->n_numeric >= RS_MAX_NUMERIC) continue;
                rs_numeric_t *nf = &ev->numeric[ev->n_numeric++];
                memcpy(nf->name, col, sizeof(nf->name));
                nf->value = v;
            } else {
                if (ev->n_categ >= RS_MAX_CATEG) continue;
                rs_categ_t *cf = &ev->categ[ev->n_categ++];
                memcpy(cf->name, col, sizeof(cf->name));
                if ((err = rs_str_copy(cf->value, sizeof(cf->value), s, l,
                                       col, errstr, es)))
                    return err;
            }
            continue;
        }
        if ((roles & (1u << RS_COL_ID)) &&
            (err = rs_str_copy(ev->id, sizeof(ev->id), s, l, col, errstr,
                               es)))
            return err;
        if ((roles & (1u << RS_COL_TYPE)) &&
            (err = rs_str_copy(ev->type, sizeof(ev->type), s, l, col, errstr,
                               es)))
            return err;
        if ((roles & (1u << RS_COL_ENTITY)) &&
            (err = rs_str_copy(ev->entity_id, sizeof(ev->entity_id), s, l,
                               col, errstr, es)))
            return err;
        if ((roles & (1u << RS_COL_CPTY)) &&
            (err = rs_str_copy(ev->counterparty_id,
                               sizeof(ev->counterparty_id), s, l, col, errstr,
                               es)))
            return err;
        if (roles & (1u << RS_COL_TIME)) {
            if (!l)
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "column '%s' (time): empty", col);
            if (rs_time_parse(s, l, &ev->event_time_ms) != 0)
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "column '%s' (time): unparseable timestamp "
                               "'%.40s'", col, s);
        }
        if ((roles & (1u << RS_COL_AMOUNT)) && l) {
            int is_nan;
            if (rs_num_parse(s, l, &ev->amount) != 0) {
                if (rs_nonfinite_word(s, l, &is_nan))
                    return rs_errf(errstr, es, RS_ERR_INVALID,
                                   "column '%s' (amount): %s is not allowed",
                                   col, is_nan ? "NaN" : "infinity");
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "column '%s' (amount): '%.40s' is not a "
                               "number", col, s);
            }
        }
        if ((roles & (1u << RS_COL_LABEL)) && l) {
            double lv;
            if (rs_label_parse(s, l, &lv) != 0)
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "column '%s' (label): '%.40s' is not a number "
                               "in [0,1] or true/false", col, s);
            if (label_out) *label_out = lv;
            if (has_label) *has_label = 1;
        }
    }
    if (!ev->type[0]) rs_strlcpy(ev->type, "event", sizeof(ev->type));
    return rs_event_validate(ev, errstr, es);
}
