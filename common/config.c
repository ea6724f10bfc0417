/* config.c -- table-driven YAML configuration.  See config.h.
 *
 * Design: libyaml's document API builds a node graph from the buffer; we
 * walk it once, applying each scalar through the same per-type parser that
 * fills the defaults and serves rs_conf_set(), so a value is validated the
 * same way wherever it comes from.
 *
 * Robustness (this file is fuzzed): every node index from libyaml is
 * checked, aliases may make the graph cyclic or exponentially large, so the
 * walk has a depth limit and a total visit budget; scalars with embedded NUL
 * bytes are rejected; every error path releases the parser and document.
 * A cheap pre-scan rejects deep flow nesting and floods of anchors, the two
 * inputs on which libyaml itself goes quadratic.
 *
 * A plain YAML null (`key:`, `key: ~`, `key: null`) means "not set": a
 * section field goes back to its default, a passthrough key is ignored.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define RS_CONF_MAX_DEPTH 16         /* nesting inside a passthrough    */
#define RS_CONF_MAX_VISITS 10000     /* node visits per load (aliases)  */
#define RS_CONF_MAX_KEY 256          /* flattened key incl. section     */
#define RS_CONF_MAX_FILE (1 << 20)   /* rs_conf_load_file size limit    */
/* libyaml 0.2.5 is quadratic in flow nesting depth and in the number of
 * anchors/aliases; a pre-scan bounds both so hostile input stays fast. */
#define RS_CONF_MAX_FLOW_DEPTH 64
#define RS_CONF_MAX_ANCHORS 1000

/* One registered section: a table (sec) or a passthrough (kv). */
typedef struct rs_conf_ent_s {
    const char *name;               /* sec->name or pt_name             */
    const char *desc;
    const rs_conf_section_t *sec;   /* NULL for a passthrough           */
    rs_kv_t *kv;                    /* passthrough target, caller-owned */
    char *pt_name, *pt_desc;        /* owned copies for passthrough     */
    rs_conf_raw_fn raw;             /* hook for keys the table lacks    */
    rs_conf_raw_dump_fn raw_dump;
    void *raw_opaque;
    rs_conf_section_t *raw_sec;     /* owned empty table of a raw-only
                                     * section                          */
    struct rs_conf_raw_doc_s {      /* documented raw keys (docs only)  */
        char *key, *type, *desc;
    } *raw_docs;
    int nraw_docs;
} rs_conf_ent_t;

struct rs_conf_s {
    rs_conf_ent_t *ents;            /* [cnt], registration order        */
    int cnt, cap;
};

/* ------------------------------------------------------------- helpers */

static const char *rs_conf_type_name(rs_conf_type_t type) {
    switch (type) {
    case RS_CONF_STRING: return "string";
    case RS_CONF_INT: return "int";
    case RS_CONF_DOUBLE: return "double";
    case RS_CONF_BOOL: return "bool";
    case RS_CONF_DURATION: return "duration";
    case RS_CONF_ENUM: return "enum";
    }
    return "?";
}

/* Copy `s` for display inside an error message: at most ~60 bytes,
 * non-printable bytes shown as '?', "..." when cut. */
static void rs_conf_show(const char *s, char *out, size_t size) {
    size_t j = 0, i = 0;
    for (; s[i] && j + 4 < size && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i] && j + 3 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

/* Append `s` to a ", "-separated list in buf; ends in "..." when full. */
static void rs_conf_list_add(char *buf, size_t size, const char *s) {
    size_t n = strlen(buf);
    if (n >= 3 && !strcmp(buf + n - 3, "...")) return; /* already full */
    /* Keep room for a trailing ", ..." after whatever we append. */
    if (n + strlen(s) + 2 + 6 >= size) {
        snprintf(buf + n, size - n, "%s...", n ? ", " : "");
        return;
    }
    snprintf(buf + n, size - n, "%s%s", n ? ", " : "", s);
}

static rs_conf_ent_t *rs_conf_find(const rs_conf_t *conf, const char *name,
                                   size_t len) {
    for (int i = 0; i < conf->cnt; i++)
        if (strlen(conf->ents[i].name) == len &&
            !memcmp(conf->ents[i].name, name, len))
            return &conf->ents[i];
    return NULL;
}

static const rs_conf_field_t *rs_conf_field(const rs_conf_section_t *sec,
                                            const char *name) {
    for (int i = 0; i < sec->nfields; i++)
        if (!strcmp(sec->fields[i].name, name)) return &sec->fields[i];
    return NULL;
}

static void rs_conf_known_sections(const rs_conf_t *conf, char *buf,
                                   size_t size) {
    buf[0] = '\0';
    for (int i = 0; i < conf->cnt; i++)
        rs_conf_list_add(buf, size, conf->ents[i].name);
    if (!buf[0]) rs_strlcpy(buf, "none", size);
}

static void rs_conf_known_keys(const rs_conf_section_t *sec, char *buf,
                               size_t size) {
    buf[0] = '\0';
    for (int i = 0; i < sec->nfields; i++)
        rs_conf_list_add(buf, size, sec->fields[i].name);
    if (!buf[0]) rs_strlcpy(buf, "none", size);
}

/* 1 if `s` names a secret (case-insensitive). */
static int rs_conf_is_secret(const char *s) {
    return strcasestr(s, "password") || strcasestr(s, "secret") ||
           strcasestr(s, "token");
}

/* Find choice `s` in "a|b|c"; returns its index or -1. */
static int rs_conf_enum_index(const char *choices, const char *s) {
    size_t len = strlen(s);
    int idx = 0;
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !memcmp(p, s, n)) return idx;
        if (!bar) return -1;
        p = bar + 1;
        idx++;
    }
}

/* Write choice `idx` of "a|b|c" into buf; 0 if it exists. */
static int rs_conf_enum_name(const char *choices, int idx, char *buf,
                             size_t size) {
    const char *p = choices;
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '|');
        if (!p) return -1;
        p++;
    }
    if (idx < 0) return -1;
    size_t n = strcspn(p, "|");
    if (n >= size) n = size - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return 0;
}

/* "a|b|c" -> "a, b, c" */
static void rs_conf_enum_list(const char *choices, char *buf, size_t size) {
    char one[128];
    buf[0] = '\0';
    for (int i = 0; rs_conf_enum_name(choices, i, one, sizeof(one)) == 0; i++)
        rs_conf_list_add(buf, size, one);
}

static int rs_conf_has_bounds(const rs_conf_field_t *f) {
    return f->min != 0 || f->max != 0;
}

/* Bound (a double) as int64_t without overflow, for messages. */
static int64_t rs_conf_d2i(double v) {
    if (!(v > -9.2e18)) return v != v ? 0 : -(int64_t)9200000000000000000LL;
    if (v > 9.2e18) return (int64_t)9200000000000000000LL;
    return (int64_t)v;
}

/* Parse `val` for field `f` and store it at base+offset.  Nothing is
 * written on failure; `why` receives the reason (without the key). */
static int rs_conf_parse_value(const rs_conf_field_t *f, const char *val,
                               void *base, char *why, size_t whysz) {
    char shown[80];
    char *dst = (char *)base + f->offset;
    char *end;
    rs_conf_show(val, shown, sizeof(shown));

    switch (f->type) {
    case RS_CONF_STRING: {
        size_t n = strlen(val);
        if (n >= f->size) {
            snprintf(why, whysz, "value too long (%zu bytes, max %zu)", n,
                     f->size - 1);
            return -1;
        }
        memcpy(dst, val, n + 1);
        return 0;
    }
    case RS_CONF_INT: {
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || isspace((unsigned char)*val)) {
            snprintf(why, whysz, "invalid integer '%s'", shown);
            return -1;
        }
        if (rs_conf_has_bounds(f) &&
            ((double)v < f->min || (double)v > f->max)) {
            snprintf(why, whysz, "value %lld out of range [%.0f, %.0f]", v,
                     f->min, f->max);
            return -1;
        }
        int64_t v64 = v;
        memcpy(dst, &v64, sizeof(v64));
        return 0;
    }
    case RS_CONF_DOUBLE: {
        errno = 0;
        double v = strtod(val, &end);
        if (end == val || *end || !isfinite(v) ||
            isspace((unsigned char)*val)) {
            snprintf(why, whysz, "invalid number '%s'", shown);
            return -1;
        }
        if (rs_conf_has_bounds(f) && (v < f->min || v > f->max)) {
            snprintf(why, whysz, "value %g out of range [%g, %g]", v,
                     f->min, f->max);
            return -1;
        }
        memcpy(dst, &v, sizeof(v));
        return 0;
    }
    case RS_CONF_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"};
        static const char *no[] = {"false", "no", "off", "0"};
        int v = -1;
        for (size_t i = 0; i < RS_ARRAY_LEN(yes); i++) {
            if (!strcasecmp(val, yes[i])) v = 1;
            if (!strcasecmp(val, no[i])) v = 0;
        }
        if (v < 0) {
            snprintf(why, whysz,
                     "invalid boolean '%s' (expected true/false, yes/no, "
                     "on/off)", shown);
            return -1;
        }
        memcpy(dst, &v, sizeof(v));
        return 0;
    }
    case RS_CONF_DURATION: {
        int64_t ms;
        if (f->choices && !strcmp(f->choices, "auto") && !strcmp(val, "auto")) {
            ms = RS_CONF_AUTO; /* the module resolves it */
            memcpy(dst, &ms, sizeof(ms));
            return 0;
        }
        if (rs_duration_parse(val, &ms) != 0) {
            snprintf(why, whysz,
                     "invalid duration '%s' (expected e.g. 250ms, 10s, 5m, "
                     "1h, 7d)", shown);
            return -1;
        }
        if (rs_conf_has_bounds(f) &&
            ((double)ms < f->min || (double)ms > f->max)) {
            char a[32], lo[32], hi[32];
            rs_duration_fmt(ms, a, sizeof(a));
            rs_duration_fmt(rs_conf_d2i(f->min), lo, sizeof(lo));
            rs_duration_fmt(rs_conf_d2i(f->max), hi, sizeof(hi));
            snprintf(why, whysz, "duration %s out of range [%s, %s]", a, lo,
                     hi);
            return -1;
        }
        memcpy(dst, &ms, sizeof(ms));
        return 0;
    }
    case RS_CONF_ENUM: {
        int idx = rs_conf_enum_index(f->choices, val);
        if (idx < 0) {
            char list[256];
            rs_conf_enum_list(f->choices, list, sizeof(list));
            snprintf(why, whysz, "invalid value '%s' (expected one of: %s)",
                     shown, list);
            return -1;
        }
        memcpy(dst, &idx, sizeof(idx));
        return 0;
    }
    }
    snprintf(why, whysz, "unknown field type %d", (int)f->type);
    return -1;
}

/* Reset field `f` to its default (the default was checked at
 * registration, so this only fails for a NULL default, which zeroes). */
static void rs_conf_reset_field(const rs_conf_field_t *f, void *base) {
    char why[256];
    char *dst = (char *)base + f->offset;
    if (f->def && rs_conf_parse_value(f, f->def, base, why, sizeof(why)) == 0)
        return;
    switch (f->type) {
    case RS_CONF_STRING: dst[0] = '\0'; break;
    case RS_CONF_INT:
    case RS_CONF_DURATION: memset(dst, 0, sizeof(int64_t)); break;
    case RS_CONF_DOUBLE: { double z = 0; memcpy(dst, &z, sizeof(z)); break; }
    case RS_CONF_BOOL:
    case RS_CONF_ENUM: memset(dst, 0, sizeof(int)); break;
    }
}

/* ------------------------------------------------------------ lifecycle */

rs_conf_t *rs_conf_new(void) { return rs_calloc(1, sizeof(rs_conf_t)); }

void rs_conf_destroy(rs_conf_t *conf) {
    if (!conf) return;
    for (int i = 0; i < conf->cnt; i++) {
        free(conf->ents[i].pt_name);
        free(conf->ents[i].pt_desc);
        free(conf->ents[i].raw_sec);
        for (int k = 0; k < conf->ents[i].nraw_docs; k++) {
            free(conf->ents[i].raw_docs[k].key);
            free(conf->ents[i].raw_docs[k].type);
            free(conf->ents[i].raw_docs[k].desc);
        }
        free(conf->ents[i].raw_docs);
    }
    free(conf->ents);
    free(conf);
}

static rs_conf_ent_t *rs_conf_push(rs_conf_t *conf) {
    if (conf->cnt == conf->cap) {
        conf->cap = conf->cap ? conf->cap * 2 : 8;
        conf->ents = rs_realloc(conf->ents,
                                sizeof(*conf->ents) * (size_t)conf->cap);
    }
    rs_conf_ent_t *ent = &conf->ents[conf->cnt++];
    memset(ent, 0, sizeof(*ent));
    return ent;
}

/* A section name may not be empty or contain '.' (it splits keys). */
static int rs_conf_name_ok(const char *name) {
    return name && *name && !strchr(name, '.');
}

rs_err_t rs_conf_add_section(rs_conf_t *conf, const rs_conf_section_t *sec,
                             char *errstr, size_t errstr_size) {
    if (!conf || !sec || !rs_conf_name_ok(sec->name))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "invalid section (NULL, empty or dotted name)");
    if (rs_conf_find(conf, sec->name, strlen(sec->name)))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "section '%s' registered twice", sec->name);
    if (sec->nfields < 0 || (sec->nfields > 0 && (!sec->fields || !sec->base)))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "section '%s': bad field table", sec->name);

    /* Validate the whole table before writing anything. */
    for (int i = 0; i < sec->nfields; i++) {
        const rs_conf_field_t *f = &sec->fields[i];
        if (!f->name || !*f->name)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "section '%s': field %d has no name", sec->name, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(sec->fields[j].name, f->name))
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "%s.%s: declared twice", sec->name, f->name);
        if ((int)f->type < RS_CONF_STRING || f->type > RS_CONF_ENUM)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s.%s: unknown type %d", sec->name, f->name,
                           (int)f->type);
        if (f->type == RS_CONF_STRING && f->size == 0)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s.%s: string field with size 0", sec->name,
                           f->name);
        if (f->type == RS_CONF_ENUM && (!f->choices || !*f->choices))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s.%s: enum without choices", sec->name, f->name);
    }
    for (int i = 0; i < sec->nfields; i++) {
        const rs_conf_field_t *f = &sec->fields[i];
        char why[384];
        if (!f->def) {
            rs_conf_reset_field(f, sec->base);
            continue;
        }
        if (rs_conf_parse_value(f, f->def, sec->base, why, sizeof(why)))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s.%s: bad default: %s", sec->name, f->name, why);
    }
    rs_conf_ent_t *ent = rs_conf_push(conf);
    ent->name = sec->name;
    ent->desc = sec->desc;
    ent->sec = sec;
    return RS_OK;
}

void rs_conf_add_passthrough(rs_conf_t *conf, const char *name,
                             const char *desc, rs_kv_t *kv) {
    if (!conf || !kv || !rs_conf_name_ok(name)) {
        rs_error("config", "invalid passthrough section '%s'",
                 name ? name : "(null)");
        return;
    }
    if (rs_conf_find(conf, name, strlen(name))) {
        rs_error("config", "section '%s' registered twice (ignored)", name);
        return;
    }
    rs_conf_ent_t *ent = rs_conf_push(conf);
    ent->pt_name = rs_strdup(name);
    ent->pt_desc = desc ? rs_strdup(desc) : NULL;
    ent->name = ent->pt_name;
    ent->desc = ent->pt_desc;
    ent->kv = kv;
}

rs_err_t rs_conf_add_raw(rs_conf_t *conf, const char *name, const char *desc,
                         rs_conf_raw_fn fn, rs_conf_raw_dump_fn dump,
                         void *opaque, char *errstr, size_t errstr_size) {
    if (!conf || !fn || !rs_conf_name_ok(name))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "invalid raw section '%s'", name ? name : "(null)");
    rs_conf_ent_t *ent = rs_conf_find(conf, name, strlen(name));
    if (ent && !ent->sec)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "section '%s' is a passthrough; cannot add a raw hook",
                       name);
    if (!ent) {
        ent = rs_conf_push(conf);
        ent->pt_name = rs_strdup(name);
        ent->pt_desc = desc ? rs_strdup(desc) : NULL;
        ent->raw_sec = rs_calloc(1, sizeof(*ent->raw_sec));
        ent->raw_sec->name = ent->pt_name;
        ent->raw_sec->desc = ent->pt_desc;
        ent->name = ent->pt_name;
        ent->desc = ent->pt_desc;
        ent->sec = ent->raw_sec;
    }
    ent->raw = fn;
    ent->raw_dump = dump;
    ent->raw_opaque = opaque;
    return RS_OK;
}

rs_err_t rs_conf_add_raw_doc(rs_conf_t *conf, const char *section,
                             const char *key, const char *type,
                             const char *desc, char *errstr,
                             size_t errstr_size) {
    rs_conf_ent_t *ent =
        conf && section ? rs_conf_find(conf, section, strlen(section)) : NULL;
    if (!ent || !ent->raw || !key || !*key || !type || !desc)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "raw key doc '%s.%s': no raw hook on that section",
                       section ? section : "(null)", key ? key : "(null)");
    ent->raw_docs = rs_realloc(ent->raw_docs, sizeof(*ent->raw_docs) *
                                                  (size_t)(ent->nraw_docs + 1));
    struct rs_conf_raw_doc_s *d = &ent->raw_docs[ent->nraw_docs++];
    d->key = rs_strdup(key);
    d->type = rs_strdup(type);
    d->desc = rs_strdup(desc);
    return RS_OK;
}

/* ------------------------------------------------------------ raw nodes */

const rs_conf_node_t *rs_conf_node_get(const rs_conf_node_t *map,
                                       const char *key) {
    if (!map || map->type != RS_CONF_NODE_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (map->kids[2 * i].value && !strcmp(map->kids[2 * i].value, key))
            return &map->kids[2 * i + 1];
    return NULL;
}

rs_err_t rs_conf_node_err(const rs_conf_node_t *node, char *errstr,
                          size_t errstr_size, const char *fmt, ...) {
    if (errstr && errstr_size) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (node)
            snprintf(errstr, errstr_size, "%s:%d: %s",
                     node->src ? node->src : "<config>", node->line, msg);
        else
            snprintf(errstr, errstr_size, "%s", msg);
    }
    return RS_ERR_CONFIG;
}

static void rs_conf_node_free(rs_conf_node_t *node) {
    if (!node) return;
    int nk = node->type == RS_CONF_NODE_MAP ? 2 * node->n
             : node->type == RS_CONF_NODE_SEQ ? node->n : 0;
    for (int i = 0; i < nk; i++) rs_conf_node_free(&node->kids[i]);
    free(node->kids);
    free((char *)node->value);
    node->kids = NULL;
    node->value = NULL;
}

/* ----------------------------------------------------------------- YAML */

/* State of one rs_conf_load_yaml() walk. */
typedef struct rs_conf_ld_s {
    rs_conf_t *conf;
    yaml_document_t *doc;
    const char *src;
    char *errstr;
    size_t errstr_size;
    int visits;                     /* nodes visited so far             */
} rs_conf_ld_t;

static rs_err_t rs_conf_lderr(rs_conf_ld_t *ld, const yaml_node_t *node,
                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rs_err_t rs_conf_lderr(rs_conf_ld_t *ld, const yaml_node_t *node,
                              const char *fmt, ...) {
    if (ld->errstr && ld->errstr_size) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (node)
            snprintf(ld->errstr, ld->errstr_size, "%s:%zu: %s", ld->src,
                     node->start_mark.line + 1, msg);
        else
            snprintf(ld->errstr, ld->errstr_size, "%s: %s", ld->src, msg);
    }
    return RS_ERR_CONFIG;
}

/* Fetch node `idx`, charging the visit budget.  NULL + error if missing
 * or over budget. */
static yaml_node_t *rs_conf_node(rs_conf_ld_t *ld, int idx,
                                 const yaml_node_t *parent, rs_err_t *err) {
    yaml_node_t *node = yaml_document_get_node(ld->doc, idx);
    if (!node) {
        *err = rs_conf_lderr(ld, parent, "malformed YAML document");
        return NULL;
    }
    if (++ld->visits > RS_CONF_MAX_VISITS) {
        *err = rs_conf_lderr(ld, node,
                             "document too large (more than %d nodes after "
                             "alias expansion)", RS_CONF_MAX_VISITS);
        return NULL;
    }
    return node;
}

static const char *rs_conf_node_kind(const yaml_node_t *node) {
    switch (node->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "an empty node";
    }
}

/* A plain null scalar: empty, "~" or null/Null/NULL. */
static int rs_conf_is_null(const yaml_node_t *node) {
    if (node->type != YAML_SCALAR_NODE) return 0;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
        node->data.scalar.style != YAML_ANY_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)node->data.scalar.value;
    size_t n = node->data.scalar.length;
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                       !memcmp(s, "NULL", 4)));
}

/* Text of a scalar node; NULL (and an error naming `what`) if the node is
 * not a scalar or holds a NUL byte. */
static const char *rs_conf_scalar(rs_conf_ld_t *ld, const yaml_node_t *node,
                                  const char *what, rs_err_t *err) {
    if (node->type != YAML_SCALAR_NODE) {
        *err = rs_conf_lderr(ld, node, "%s: expected a scalar, got %s", what,
                             rs_conf_node_kind(node));
        return NULL;
    }
    const char *s = (const char *)node->data.scalar.value;
    if (!s || memchr(s, '\0', node->data.scalar.length)) {
        *err = rs_conf_lderr(ld, node, "%s: value contains a NUL byte", what);
        return NULL;
    }
    return s;
}

/* Key of a mapping pair, for the duplicate check. */
typedef struct rs_conf_dupkey_s {
    const yaml_node_t *node;
    size_t pos;                     /* pair index in the mapping        */
} rs_conf_dupkey_t;

static int rs_conf_dupkey_cmp(const void *a, const void *b) {
    const rs_conf_dupkey_t *x = a, *y = b;
    size_t lx = x->node->data.scalar.length, ly = y->node->data.scalar.length;
    int c = memcmp(x->node->data.scalar.value, y->node->data.scalar.value,
                   RS_MIN(lx, ly));
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Reject repeated scalar keys in one mapping (YAML requires unique keys;
 * a repeat is almost always an editing mistake).  Sorts a copy, so large
 * hostile mappings cost O(n log n), not O(n^2). */
static rs_err_t rs_conf_check_dups(rs_conf_ld_t *ld, const yaml_node_t *map,
                                   const char *prefix) {
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    size_t npairs = (size_t)(map->data.mapping.pairs.top - start), n = 0;
    if (npairs < 2) return RS_OK;
    rs_conf_dupkey_t *keys = rs_malloc(sizeof(*keys) * npairs);
    for (size_t i = 0; i < npairs; i++) {
        const yaml_node_t *k = yaml_document_get_node(ld->doc, start[i].key);
        if (k && k->type == YAML_SCALAR_NODE)
            keys[n++] = (rs_conf_dupkey_t){k, i};
    }
    qsort(keys, n, sizeof(*keys), rs_conf_dupkey_cmp);
    /* Report the repeat that comes first in the document. */
    const rs_conf_dupkey_t *dup = NULL;
    for (size_t i = 1; i < n; i++) {
        const yaml_node_t *a = keys[i - 1].node, *b = keys[i].node;
        if (a->data.scalar.length == b->data.scalar.length &&
            !memcmp(a->data.scalar.value, b->data.scalar.value,
                    a->data.scalar.length) &&
            (!dup || keys[i].pos < dup->pos))
            dup = &keys[i];
    }
    rs_err_t err = RS_OK;
    if (dup) {
        char shown[80];
        rs_conf_show((const char *)dup->node->data.scalar.value, shown,
                     sizeof(shown));
        err = rs_conf_lderr(ld, dup->node, "duplicate key '%s%s%s'", prefix,
                            *prefix ? "." : "", shown);
    }
    free(keys);
    return err;
}

/* Apply a passthrough mapping, flattening nested mappings into
 * "prefix.key".  `prefix` is the key so far (without the section). */
static rs_err_t rs_conf_flatten(rs_conf_ld_t *ld, rs_conf_ent_t *ent,
                                const char *prefix, const yaml_node_t *map,
                                int depth) {
    rs_err_t err = RS_OK;
    char where[RS_CONF_MAX_KEY * 2];
    snprintf(where, sizeof(where), "%s%s%s", ent->name, *prefix ? "." : "",
             prefix);
    if (depth > RS_CONF_MAX_DEPTH)
        return rs_conf_lderr(ld, map, "%s: nesting deeper than %d levels",
                             where, RS_CONF_MAX_DEPTH);
    if ((err = rs_conf_check_dups(ld, map, where))) return err;

    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = rs_conf_node(ld, p->key, map, &err);
        if (!kn) return err;
        const char *k = rs_conf_scalar(ld, kn, where, &err);
        if (!k) return err;
        if (!*k) return rs_conf_lderr(ld, kn, "%s: empty key", where);

        char key[RS_CONF_MAX_KEY];
        int n = snprintf(key, sizeof(key), "%s%s%s", prefix,
                         *prefix ? "." : "", k);
        if (n < 0 || (size_t)n + strlen(ent->name) + 1 >= sizeof(key)) {
            char shown[80];
            rs_conf_show(k, shown, sizeof(shown));
            return rs_conf_lderr(ld, kn, "%s: key '%s' too long (max %d)",
                                 where, shown, RS_CONF_MAX_KEY);
        }
        char full[RS_CONF_MAX_KEY * 2];
        snprintf(full, sizeof(full), "%s.%s", ent->name, key);

        yaml_node_t *vn = rs_conf_node(ld, p->value, kn, &err);
        if (!vn) return err;
        if (vn->type == YAML_MAPPING_NODE) {
            if ((err = rs_conf_flatten(ld, ent, key, vn, depth + 1)))
                return err;
            continue;
        }
        if (vn->type != YAML_SCALAR_NODE)
            return rs_conf_lderr(ld, vn,
                                 "%s: expected a scalar or a mapping, got %s",
                                 full, rs_conf_node_kind(vn));
        if (rs_conf_is_null(vn)) continue; /* "not set" */
        const char *v = rs_conf_scalar(ld, vn, full, &err);
        if (!v) return err;
        rs_kv_set(ent->kv, key, v);
    }
    return RS_OK;
}

/* Copy libyaml node `yn` into our read-only tree `out` (depth-limited,
 * charged to the visit budget; mapping keys must be scalars and unique). */
static rs_err_t rs_conf_build(rs_conf_ld_t *ld, const yaml_node_t *yn,
                              const char *where, rs_conf_node_t *out,
                              int depth) {
    rs_err_t err = RS_OK;
    memset(out, 0, sizeof(*out));
    out->line = (int)yn->start_mark.line + 1;
    out->src = ld->src;
    if (depth > RS_CONF_MAX_DEPTH)
        return rs_conf_lderr(ld, yn, "%s: nesting deeper than %d levels",
                             where, RS_CONF_MAX_DEPTH);
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        const char *v = rs_conf_scalar(ld, yn, where, &err);
        if (!v) return err;
        out->type = RS_CONF_NODE_SCALAR;
        out->is_null = rs_conf_is_null(yn);
        out->value = rs_strdup(v);
        return RS_OK;
    }
    case YAML_SEQUENCE_NODE: {
        out->type = RS_CONF_NODE_SEQ;
        const yaml_node_item_t *st = yn->data.sequence.items.start;
        int n = (int)(yn->data.sequence.items.top - st);
        out->kids = rs_calloc((size_t)(n ? n : 1), sizeof(*out->kids));
        for (int i = 0; i < n; i++) {
            yaml_node_t *c = rs_conf_node(ld, st[i], yn, &err);
            if (!c) return err;
            out->n = i + 1;
            if ((err = rs_conf_build(ld, c, where, &out->kids[i], depth + 1)))
                return err;
        }
        return RS_OK;
    }
    case YAML_MAPPING_NODE: {
        out->type = RS_CONF_NODE_MAP;
        if ((err = rs_conf_check_dups(ld, yn, where))) return err;
        const yaml_node_pair_t *st = yn->data.mapping.pairs.start;
        int n = (int)(yn->data.mapping.pairs.top - st);
        out->kids = rs_calloc((size_t)(n ? 2 * n : 1), sizeof(*out->kids));
        for (int i = 0; i < n; i++) {
            yaml_node_t *kn = rs_conf_node(ld, st[i].key, yn, &err);
            if (!kn) return err;
            if (kn->type != YAML_SCALAR_NODE)
                return rs_conf_lderr(ld, kn, "%s: mapping keys must be "
                                     "scalars", where);
            yaml_node_t *vn = rs_conf_node(ld, st[i].value, kn, &err);
            if (!vn) return err;
            out->n = i + 1;
            if ((err = rs_conf_build(ld, kn, where, &out->kids[2 * i],
                                     depth + 1)) ||
                (err = rs_conf_build(ld, vn, where, &out->kids[2 * i + 1],
                                     depth + 1)))
                return err;
        }
        return RS_OK;
    }
    default:
        out->type = RS_CONF_NODE_SCALAR;
        out->is_null = 1;
        out->value = rs_strdup("");
        return RS_OK;
    }
}

/* Hand key `k` (node kn, value yaml node vn) to the section's raw hook. */
static rs_err_t rs_conf_apply_raw(rs_conf_ld_t *ld, rs_conf_ent_t *ent,
                                  const char *k, const yaml_node_t *vn) {
    char where[RS_CONF_MAX_KEY];
    snprintf(where, sizeof(where), "%s.%s", ent->name, k);
    rs_conf_node_t root;
    rs_err_t err = rs_conf_build(ld, vn, where, &root, 0);
    if (!err) {
        char msg[512] = "";
        err = ent->raw(ent->raw_opaque, ent->name, k, &root, msg, sizeof(msg));
        if (err && ld->errstr && ld->errstr_size) {
            if (!msg[0]) snprintf(msg, sizeof(msg), "%s: invalid value", where);
            rs_strlcpy(ld->errstr, msg, ld->errstr_size);
        }
    }
    rs_conf_node_free(&root);
    return err;
}

/* Apply one table-driven section mapping. */
static rs_err_t rs_conf_apply_section(rs_conf_ld_t *ld, rs_conf_ent_t *ent,
                                      const yaml_node_t *map) {
    const rs_conf_section_t *sec = ent->sec;
    rs_err_t err;
    if ((err = rs_conf_check_dups(ld, map, ent->name))) return err;

    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = rs_conf_node(ld, p->key, map, &err);
        if (!kn) return err;
        const char *k = rs_conf_scalar(ld, kn, ent->name, &err);
        if (!k) return err;
        const rs_conf_field_t *f = rs_conf_field(sec, k);
        if (!f && ent->raw) {
            yaml_node_t *rv = rs_conf_node(ld, p->value, kn, &err);
            if (!rv) return err;
            if ((err = rs_conf_apply_raw(ld, ent, k, rv))) return err;
            continue;
        }
        if (!f) {
            char known[384], shown[80];
            rs_conf_known_keys(sec, known, sizeof(known));
            rs_conf_show(k, shown, sizeof(shown));
            return rs_conf_lderr(ld, kn, "unknown key '%s.%s' (known keys: %s)",
                                 ent->name, shown, known);
        }
        char full[256];
        snprintf(full, sizeof(full), "%s.%s", ent->name, f->name);

        yaml_node_t *vn = rs_conf_node(ld, p->value, kn, &err);
        if (!vn) return err;
        if (vn->type != YAML_SCALAR_NODE)
            return rs_conf_lderr(ld, vn, "%s: expected a scalar value, got %s",
                                 full, rs_conf_node_kind(vn));
        if (rs_conf_is_null(vn)) {
            rs_conf_reset_field(f, sec->base);
            continue;
        }
        const char *v = rs_conf_scalar(ld, vn, full, &err);
        if (!v) return err;
        char why[384];
        if (rs_conf_parse_value(f, v, sec->base, why, sizeof(why)))
            return rs_conf_lderr(ld, vn, "%s: %s", full, why);
    }
    return RS_OK;
}

static rs_err_t rs_conf_apply_root(rs_conf_ld_t *ld, const yaml_node_t *root) {
    rs_err_t err;
    if (rs_conf_is_null(root)) return RS_OK; /* "~" alone: empty config */
    if (root->type != YAML_MAPPING_NODE)
        return rs_conf_lderr(ld, root,
                             "top level must be a mapping of sections, got %s",
                             rs_conf_node_kind(root));
    if ((err = rs_conf_check_dups(ld, root, ""))) return err;

    for (const yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = rs_conf_node(ld, p->key, root, &err);
        if (!kn) return err;
        const char *name = rs_conf_scalar(ld, kn, "section name", &err);
        if (!name) return err;
        rs_conf_ent_t *ent = rs_conf_find(ld->conf, name, strlen(name));
        if (!ent) {
            char known[384], shown[80];
            rs_conf_known_sections(ld->conf, known, sizeof(known));
            rs_conf_show(name, shown, sizeof(shown));
            return rs_conf_lderr(ld, kn,
                                 "unknown section '%s' (known sections: %s)",
                                 shown, known);
        }
        yaml_node_t *vn = rs_conf_node(ld, p->value, kn, &err);
        if (!vn) return err;
        if (rs_conf_is_null(vn)) continue; /* "redis:" with no keys */
        if (vn->type != YAML_MAPPING_NODE)
            return rs_conf_lderr(ld, vn,
                                 "section '%s' must be a mapping of keys, "
                                 "got %s", ent->name, rs_conf_node_kind(vn));
        err = ent->sec ? rs_conf_apply_section(ld, ent, vn)
                       : rs_conf_flatten(ld, ent, "", vn, 0);
        if (err) return err;
    }
    return RS_OK;
}

/* Conservative pre-scan for the inputs libyaml handles in quadratic time:
 * flow nesting depth ('[' / '{') and anchors/aliases ('&' / '*' starting a
 * token).  Skips comments and quoted scalars; may over-count inside block
 * scalars, which only matters far beyond any real configuration. */
static rs_err_t rs_conf_prescan(const char *buf, size_t len, const char *src,
                                char *errstr, size_t errstr_size) {
    int depth = 0, anchors = 0;
    size_t line = 1;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        char prev = i ? buf[i - 1] : '\n';
        int tok_start = strchr(" \t\r\n[{,:-?", prev) != NULL && prev;
        if (c == '\n') {
            line++;
        } else if (c == '#' && (prev == ' ' || prev == '\t' || prev == '\n')) {
            while (i + 1 < len && buf[i + 1] != '\n') i++;
        } else if ((c == '"' || c == '\'') && tok_start) {
            /* "..." with backslash escapes; '...' with '' for a quote. */
            for (i++; i < len; i++) {
                if (buf[i] == '\n') line++;
                if (c == '"' && buf[i] == '\\') { i++; continue; }
                if (buf[i] != c) continue;
                if (c == '\'' && i + 1 < len && buf[i + 1] == '\'') {
                    i++;
                    continue;
                }
                break;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > RS_CONF_MAX_FLOW_DEPTH)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "%s:%zu: YAML nested deeper than %d levels",
                               src, line, RS_CONF_MAX_FLOW_DEPTH);
        } else if (c == ']' || c == '}') {
            if (depth > 0) depth--;
        } else if ((c == '&' || c == '*') && tok_start) {
            if (++anchors > RS_CONF_MAX_ANCHORS)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "%s:%zu: more than %d YAML anchors/aliases",
                               src, line, RS_CONF_MAX_ANCHORS);
        }
    }
    return RS_OK;
}

/* Turn a libyaml parser error into errstr. */
static rs_err_t rs_conf_yaml_error(const yaml_parser_t *parser,
                                   const char *buf, size_t len,
                                   const char *src, char *errstr,
                                   size_t errstr_size) {
    const char *problem = parser->problem ? parser->problem : "unknown error";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                       "%s: out of memory parsing YAML", src);
    case YAML_READER_ERROR: {
        /* Reader errors carry a byte offset, not a mark: count lines. */
        size_t off = RS_MIN(parser->problem_offset, len), line = 1;
        for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
        if (parser->problem_value != -1)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s:%zu: invalid YAML input: %s (byte 0x%02x at "
                           "offset %zu)", src, line, problem,
                           (unsigned)parser->problem_value & 0xffu,
                           parser->problem_offset);
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "%s:%zu: invalid YAML input: %s (offset %zu)", src,
                       line, problem, parser->problem_offset);
    }
    default:
        if (parser->context)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "%s:%zu:%zu: YAML syntax error: %s (%s at line "
                           "%zu, column %zu)", src,
                           parser->problem_mark.line + 1,
                           parser->problem_mark.column + 1, problem,
                           parser->context, parser->context_mark.line + 1,
                           parser->context_mark.column + 1);
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "%s:%zu:%zu: YAML syntax error: %s", src,
                       parser->problem_mark.line + 1,
                       parser->problem_mark.column + 1, problem);
    }
}

rs_err_t rs_conf_load_yaml(rs_conf_t *conf, const char *buf, size_t len,
                           const char *srcname, char *errstr,
                           size_t errstr_size) {
    const char *src = srcname ? srcname : "<config>";
    if (!conf || (!buf && len))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "%s: invalid arguments", src);
    if (!buf) buf = "";

    yaml_parser_t parser;
    yaml_document_t doc;
    rs_err_t err = rs_conf_prescan(buf, len, src, errstr, errstr_size);
    if (err) return err;
    if (!yaml_parser_initialize(&parser))
        return rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                       "%s: out of memory", src);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    if (!yaml_parser_load(&parser, &doc)) {
        /* libyaml has already released the partial document. */
        err = rs_conf_yaml_error(&parser, buf, len, src, errstr, errstr_size);
        goto done;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        rs_conf_ld_t ld = {conf, &doc, src, errstr, errstr_size, 0};
        err = rs_conf_apply_root(&ld, root);
    }
    yaml_document_delete(&doc);
    if (err || !root) goto done; /* no root: empty stream, nothing follows */

    /* Exactly one document: a second one is an error, not ignored. */
    if (!yaml_parser_load(&parser, &doc)) {
        err = rs_conf_yaml_error(&parser, buf, len, src, errstr, errstr_size);
        goto done;
    }
    root = yaml_document_get_root_node(&doc);
    if (root)
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "%s:%zu: more than one YAML document", src,
                      root->start_mark.line + 1);
    yaml_document_delete(&doc);

done:
    yaml_parser_delete(&parser);
    return err;
}

rs_err_t rs_conf_load_file(rs_conf_t *conf, const char *path, char *errstr,
                           size_t errstr_size) {
    if (!conf || !path)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "invalid arguments");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "cannot open %s: %s",
                       path, strerror(errno));
    /* Read in chunks rather than trusting the size: works for pipes. */
    size_t len = 0, cap = 0;
    char *buf = NULL;
    rs_err_t err = RS_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            buf = rs_realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (len > RS_CONF_MAX_FILE) {
            err = rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                          "%s: larger than %d bytes", path, RS_CONF_MAX_FILE);
            goto done;
        }
        if (n == 0) break;
    }
    if (ferror(fp)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "cannot read %s: %s",
                      path, strerror(errno));
        goto done;
    }
    err = rs_conf_load_yaml(conf, buf, len, path, errstr, errstr_size);
done:
    free(buf);
    fclose(fp);
    return err;
}

rs_err_t rs_conf_set(rs_conf_t *conf, const char *key, const char *value,
                     char *errstr, size_t errstr_size) {
    if (!conf || !key || !value)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "invalid arguments");
    char shown[80];
    rs_conf_show(key, shown, sizeof(shown));
    const char *dot = strchr(key, '.');
    if (!dot || dot == key || !dot[1])
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "invalid key '%s' (expected section.key)", shown);
    rs_conf_ent_t *ent = rs_conf_find(conf, key, (size_t)(dot - key));
    if (!ent) {
        char known[384];
        rs_conf_known_sections(conf, known, sizeof(known));
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "unknown section in key '%s' (known sections: %s)",
                       shown, known);
    }
    const char *sub = dot + 1;
    if (!ent->sec) {
        if (strlen(key) >= RS_CONF_MAX_KEY)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "key '%s' too long (max %d)", shown,
                           RS_CONF_MAX_KEY);
        rs_kv_set(ent->kv, sub, value);
        return RS_OK;
    }
    const rs_conf_field_t *f = rs_conf_field(ent->sec, sub);
    if (!f) {
        char known[384];
        rs_conf_known_keys(ent->sec, known, sizeof(known));
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "unknown key '%s' (known keys: %s)", shown, known);
    }
    char why[384];
    if (rs_conf_parse_value(f, value, ent->sec->base, why, sizeof(why)))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "%s.%s: %s",
                       ent->name, f->name, why);
    return RS_OK;
}

/* ----------------------------------------------------------------- dump */

/* Double-quoted YAML scalar.  Besides ASCII controls, the Unicode line
 * breaks NEL, LS, PS (and a stray BOM) are escaped: YAML folds them like
 * newlines inside quotes, which would change the value on reload. */
static void rs_conf_put_quoted(FILE *fp, const char *s) {
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (p[0] == 0xC2 && p[1] == 0x85) {
            fputs("\\N", fp);
            p += 1;
            continue;
        }
        if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            fputs(p[2] == 0xA8 ? "\\L" : "\\P", fp);
            p += 2;
            continue;
        }
        if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
            fputs("\\uFEFF", fp);
            p += 2;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", fp); break;
        case '\\': fputs("\\\\", fp); break;
        case '\n': fputs("\\n", fp); break;
        case '\t': fputs("\\t", fp); break;
        case '\r': fputs("\\r", fp); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fprintf(fp, "\\x%02x", *p);
            else fputc(*p, fp);
        }
    }
    fputc('"', fp);
}

/* Plain if obviously safe (keys like "bootstrap.servers", enum names),
 * otherwise double-quoted. */
static void rs_conf_put_scalar(FILE *fp, const char *s) {
    int plain = *s && (isalnum((unsigned char)s[0]) || s[0] == '_');
    for (const char *p = s; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("_.-/", *p);
    if (plain && (!strcasecmp(s, "null") || !strcmp(s, "~"))) plain = 0;
    if (plain) fputs(s, fp);
    else rs_conf_put_quoted(fp, s);
}

/* Shortest "%.*g" that reads back as the same double. */
static void rs_conf_fmt_double(double v, char *buf, size_t size) {
    if (v == floor(v) && fabs(v) < 1e15) { /* 10, not 1e+01 */
        snprintf(buf, size, "%.0f", v);
        if (strtod(buf, NULL) == v && !(v == 0 && signbit(v))) return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Format field `f` of `base` as YAML text (unquoted) for dump and docs. */
static void rs_conf_fmt_field(const rs_conf_field_t *f, const void *base,
                              char *buf, size_t size) {
    const char *src = (const char *)base + f->offset;
    int64_t i64;
    int i;
    double d;
    switch (f->type) {
    case RS_CONF_STRING:
        /* Always NUL-terminated within f->size (parser and reset). */
        rs_strlcpy(buf, src, size);
        break;
    case RS_CONF_INT:
        memcpy(&i64, src, sizeof(i64));
        snprintf(buf, size, "%lld", (long long)i64);
        break;
    case RS_CONF_DOUBLE:
        memcpy(&d, src, sizeof(d));
        rs_conf_fmt_double(d, buf, size);
        break;
    case RS_CONF_BOOL:
        memcpy(&i, src, sizeof(i));
        snprintf(buf, size, "%s", i ? "true" : "false");
        break;
    case RS_CONF_DURATION:
        memcpy(&i64, src, sizeof(i64));
        if (i64 == RS_CONF_AUTO && f->choices)
            snprintf(buf, size, "auto");
        else
            rs_duration_fmt(i64, buf, size);
        break;
    case RS_CONF_ENUM:
        memcpy(&i, src, sizeof(i));
        if (rs_conf_enum_name(f->choices, i, buf, size))
            snprintf(buf, size, "%d", i);
        break;
    }
}

void rs_conf_dump(const rs_conf_t *conf, FILE *fp) {
    if (!conf || !fp) return;
    for (int e = 0; e < conf->cnt; e++) {
        const rs_conf_ent_t *ent = &conf->ents[e];
        int empty = ent->sec ? ent->sec->nfields == 0 && !ent->raw_dump
                             : ent->kv->cnt == 0;
        if (ent->desc && *ent->desc) fprintf(fp, "# %s\n", ent->desc);
        fprintf(fp, "%s:%s\n", ent->name, empty ? " {}" : "");
        if (!ent->sec) {
            for (int i = 0; i < ent->kv->cnt; i++) {
                fputs("  ", fp);
                rs_conf_put_scalar(fp, ent->kv->keys[i]);
                fputs(": ", fp);
                rs_conf_put_quoted(fp, rs_conf_is_secret(ent->kv->keys[i])
                                           ? "***" : ent->kv->vals[i]);
                fputc('\n', fp);
            }
            continue;
        }
        for (int i = 0; i < ent->sec->nfields; i++) {
            const rs_conf_field_t *f = &ent->sec->fields[i];
            char val[4096];
            rs_conf_fmt_field(f, ent->sec->base, val, sizeof(val));
            fprintf(fp, "  %s: ", f->name);
            if (f->type == RS_CONF_STRING)
                /* An empty secret stays "" so "not set" is visible. */
                rs_conf_put_quoted(fp, rs_conf_is_secret(f->name) && *val
                                           ? "***" : val);
            else
                rs_conf_put_scalar(fp, val);
            fputc('\n', fp);
        }
        if (ent->raw_dump) ent->raw_dump(ent->raw_opaque, fp);
    }
}

/* Markdown table cell: escape '|' and flatten newlines. */
static void rs_conf_put_cell(FILE *fp, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", fp);
        else if (*s == '\n' || *s == '\r') fputc(' ', fp);
        else fputc(*s, fp);
    }
}

/* Type column: "int", "enum: `a` \| `b`". */
static void rs_conf_doc_type(FILE *fp, const rs_conf_field_t *f) {
    if (f->type != RS_CONF_ENUM) {
        fputs(rs_conf_type_name(f->type), fp);
        return;
    }
    char one[128];
    fputs("enum: ", fp);
    for (int c = 0; !rs_conf_enum_name(f->choices, c, one, sizeof(one)); c++) {
        if (c) fputs(" \\| ", fp);
        fputc('`', fp);
        rs_conf_put_cell(fp, one);
        fputc('`', fp);
    }
}

/* "(range 0 to 1)" for a bounded field, "" otherwise. */
static void rs_conf_range(const rs_conf_field_t *f, char *buf, size_t size) {
    buf[0] = '\0';
    if (!rs_conf_has_bounds(f)) return;
    char lo[32], hi[32];
    if (f->type == RS_CONF_DURATION) {
        rs_duration_fmt(rs_conf_d2i(f->min), lo, sizeof(lo));
        rs_duration_fmt(rs_conf_d2i(f->max), hi, sizeof(hi));
    } else {
        /* whole numbers below 1e10 in full, the rest as %g (1e+12) */
        snprintf(lo, sizeof(lo), f->min == floor(f->min) && fabs(f->min) < 1e10
                 ? "%.0f" : "%g", f->min);
        snprintf(hi, sizeof(hi), f->max == floor(f->max) && fabs(f->max) < 1e10
                 ? "%.0f" : "%g", f->max);
    }
    const char *au = f->type == RS_CONF_DURATION && f->choices ? ", or auto"
                                                                : "";
    if (f->max >= 1e18) /* "no upper bound" written as a huge number */
        snprintf(buf, size, "at least %s%s", lo, au);
    else
        snprintf(buf, size, "range %s to %s%s", lo, hi, au);
}

/* One Markdown row; `section` != NULL prefixes the key ("seq.d_model"). */
static void rs_conf_doc_row(FILE *fp, const char *section,
                            const rs_conf_field_t *f) {
    char range[96];
    fprintf(fp, "| `%s%s%s` | ", section ? section : "", section ? "." : "",
            f->name);
    rs_conf_doc_type(fp, f);
    fputs(" | ", fp);
    if (f->def && *f->def) {
        fputc('`', fp);
        rs_conf_put_cell(fp, f->def);
        fputc('`', fp);
    } else {
        fputs(f->type == RS_CONF_STRING ? "*(empty)*" : "", fp);
    }
    fputs(" | ", fp);
    if (f->desc) rs_conf_put_cell(fp, f->desc);
    rs_conf_range(f, range, sizeof(range));
    if (range[0]) fprintf(fp, "%s(%s)", f->desc ? " " : "", range);
    fputs(" |\n", fp);
}

static void rs_conf_doc_raw_rows(FILE *fp, const char *section,
                                 const rs_conf_ent_t *ent) {
    for (int k = 0; k < ent->nraw_docs; k++) {
        fprintf(fp, "| `%s%s%s` | ", section ? section : "",
                section ? "." : "", ent->raw_docs[k].key);
        rs_conf_put_cell(fp, ent->raw_docs[k].type);
        fputs(" | | ", fp);
        rs_conf_put_cell(fp, ent->raw_docs[k].desc);
        fputs(" |\n", fp);
    }
}

static const char rs_conf_doc_head[] =
    "| key | type | default | description |\n"
    "|-----|------|---------|-------------|\n";

void rs_conf_doc_markdown(const rs_conf_t *conf, FILE *fp) {
    if (!conf || !fp) return;
    for (int e = 0; e < conf->cnt; e++) {
        const rs_conf_ent_t *ent = &conf->ents[e];
        fprintf(fp, "## `%s`\n\n", ent->name);
        if (ent->desc && *ent->desc) fprintf(fp, "%s\n\n", ent->desc);
        fputs(rs_conf_doc_head, fp);
        if (!ent->sec) {
            fputs("| *any* | string | | Passed through as is; nested "
                  "mappings are flattened with `.` |\n\n", fp);
            continue;
        }
        for (int i = 0; i < ent->sec->nfields; i++)
            rs_conf_doc_row(fp, NULL, &ent->sec->fields[i]);
        rs_conf_doc_raw_rows(fp, NULL, ent);
        fputc('\n', fp);
    }
}

rs_err_t rs_conf_doc_table(const rs_conf_t *conf, const char *keys, FILE *fp,
                           char *errstr, size_t errstr_size) {
    /* Check every name first, so a bad list prints nothing. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass) fputs(rs_conf_doc_head, fp);
        const char *p = keys ? keys : "";
        int n = 0;
        while (*p) {
            size_t len = strcspn(p, ",");
            const char *next = p[len] ? p + len + 1 : p + len;
            while (len && isspace((unsigned char)*p)) { p++; len--; }
            while (len && isspace((unsigned char)p[len - 1])) len--;
            if (!len) { p = next; continue; }
            const char *dot = memchr(p, '.', len);
            size_t slen = dot ? (size_t)(dot - p) : len;
            const rs_conf_ent_t *ent = rs_conf_find(conf, p, slen);
            char key[RS_CONF_MAX_KEY];
            snprintf(key, sizeof(key), "%.*s", (int)len, p);
            if (!ent || !ent->sec)
                return rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                               "'%s': no table section of that name", key);
            if (!dot) {
                if (pass) {
                    for (int i = 0; i < ent->sec->nfields; i++)
                        rs_conf_doc_row(fp, ent->name, &ent->sec->fields[i]);
                    rs_conf_doc_raw_rows(fp, ent->name, ent);
                }
            } else {
                const rs_conf_field_t *f = rs_conf_field(ent->sec, key + slen + 1);
                int raw = -1;
                for (int k = 0; !f && k < ent->nraw_docs; k++)
                    if (!strcmp(ent->raw_docs[k].key, key + slen + 1)) raw = k;
                if (!f && raw < 0)
                    return rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                                   "'%s': no such key", key);
                if (pass && f) rs_conf_doc_row(fp, ent->name, f);
                if (pass && !f) {
                    fprintf(fp, "| `%s` | ", key);
                    rs_conf_put_cell(fp, ent->raw_docs[raw].type);
                    fputs(" | | ", fp);
                    rs_conf_put_cell(fp, ent->raw_docs[raw].desc);
                    fputs(" |\n", fp);
                }
            }
            n++;
            p = next;
        }
        if (!n)
            return rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                           "empty key list");
    }
    return RS_OK;
}

/* ---------------------------------------------------------------- sample */

/* "  # " + text wrapped at 78 columns. */
static void rs_conf_comment(FILE *fp, const char *indent, const char *text) {
    const int width = 78;
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (!w) break;
        if (col && col + 1 + (int)w > width) {
            fputc('\n', fp);
            col = 0;
        }
        if (!col) col = fprintf(fp, "%s#", indent);
        col += fprintf(fp, " %.*s", (int)w, p);
        p += w;
    }
    if (col) fputc('\n', fp);
}

void rs_conf_sample(const rs_conf_t *conf, FILE *fp) {
    if (!conf || !fp) return;
    for (int e = 0; e < conf->cnt; e++) {
        const rs_conf_ent_t *ent = &conf->ents[e];
        char line[1024];
        fputc('\n', fp);
        snprintf(line, sizeof(line), "%s: %s", ent->name,
                 ent->desc ? ent->desc : "");
        rs_conf_comment(fp, "", line);
        if (!ent->sec) {
            rs_conf_comment(fp, "", "Any key is passed through as it is; "
                            "nested mappings are flattened with '.' "
                            "(sasl: {mechanism: X} is sasl.mechanism).");
            fprintf(fp, "%s:%s\n", ent->name, ent->kv->cnt ? "" : " {}");
            for (int i = 0; i < ent->kv->cnt; i++) {
                fputs("  ", fp);
                rs_conf_put_scalar(fp, ent->kv->keys[i]);
                fputs(": ", fp);
                rs_conf_put_quoted(fp, rs_conf_is_secret(ent->kv->keys[i])
                                           ? "***" : ent->kv->vals[i]);
                fputc('\n', fp);
            }
            continue;
        }
        int empty = ent->sec->nfields == 0 && !ent->raw_dump;
        fprintf(fp, "%s:%s\n", ent->name, empty ? " {}" : "");
        for (int i = 0; i < ent->sec->nfields; i++) {
            const rs_conf_field_t *f = &ent->sec->fields[i];
            char val[4096], range[96], what[1536], choices[512];
            rs_conf_range(f, range, sizeof(range));
            if (f->type == RS_CONF_ENUM) {
                rs_conf_enum_list(f->choices, choices, sizeof(choices));
                snprintf(what, sizeof(what), "%s [one of: %s; default %s]",
                         f->desc ? f->desc : "", choices,
                         f->def && *f->def ? f->def : "-");
            } else {
                snprintf(what, sizeof(what), "%s [%s%s%s; default %s]",
                         f->desc ? f->desc : "", rs_conf_type_name(f->type),
                         range[0] ? ", " : "", range,
                         f->def && *f->def ? f->def
                                           : f->type == RS_CONF_STRING
                                                 ? "empty" : "-");
            }
            rs_conf_comment(fp, "  ", what);
            rs_conf_fmt_field(f, ent->sec->base, val, sizeof(val));
            fprintf(fp, "  %s: ", f->name);
            if (f->type == RS_CONF_STRING)
                rs_conf_put_quoted(fp, rs_conf_is_secret(f->name) && *val
                                           ? "***" : val);
            else
                rs_conf_put_scalar(fp, val);
            fputc('\n', fp);
        }
        for (int k = 0; k < ent->nraw_docs; k++) {
            snprintf(line, sizeof(line), "%s: %s [%s; not set by default]",
                     ent->raw_docs[k].key, ent->raw_docs[k].desc,
                     ent->raw_docs[k].type);
            rs_conf_comment(fp, "  ", line);
        }
        if (ent->raw_dump) ent->raw_dump(ent->raw_opaque, fp);
    }
}
