/* config.h -- table-driven YAML configuration (fluent-bit style).
 *
 * Each module declares its settings as a table of rs_conf_field_t rows
 * {name, type, default, offset, description}; docs, defaults and validation
 * all come from the same rows.  A YAML file has one mapping per section:
 *
 *     redis:
 *       url: unix:///tmp/rs/redis.sock
 *       ttl: 7d
 *     kafka:                      # passthrough: rd_kafka_conf_set(k, v)
 *       bootstrap.servers: host:9092
 *
 * Unknown sections and unknown keys are rejected with an error naming the
 * key, the file and the line.  Passthrough sections accept any key; nested
 * mappings are flattened with '.' ("sasl: {mechanism: X}" -> "sasl.mechanism").
 * A plain YAML null (`key:`, `key: ~`) means "not set": a table field goes
 * back to its default, a passthrough key is skipped; '' is an empty string.
 * Repeated keys, sequences where a value is expected and more than one
 * YAML document are errors.
 *
 * The YAML parser does no I/O (rs_conf_load_yaml takes a buffer), so it is
 * unit-tested and fuzzed; rs_conf_load_file is the thin I/O wrapper.
 * Threads: a rs_conf_t is built and read by one thread at start-up.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rs_conf_type_e {
    RS_CONF_STRING,   /* char[size] at offset                          */
    RS_CONF_INT,      /* int64_t                                       */
    RS_CONF_DOUBLE,   /* double                                        */
    RS_CONF_BOOL,     /* int (0/1); accepts true/false/yes/no/on/off   */
    RS_CONF_DURATION, /* int64_t milliseconds; "250ms", "10s", "7d";
                       * with choices "auto" also the word auto, stored
                       * as RS_CONF_AUTO for the module to resolve      */
    RS_CONF_ENUM      /* int: index into `choices` ("json|protobuf")   */
} rs_conf_type_t;

#define RS_CONF_AUTO (-1) /* a duration field's "auto" */
typedef struct rs_conf_field_s {
    const char *name;     /* key inside its section                     */
    rs_conf_type_t type;
    const char *def;      /* default, as text (parsed like a YAML value) */
    size_t offset;        /* offsetof() in the section struct           */
    size_t size;          /* RS_CONF_STRING: sizeof the char array      */
    const char *desc;     /* one line for --help and docs               */
    const char *choices;  /* RS_CONF_ENUM: "a|b|c"; RS_CONF_DURATION:
                           * "auto" if the word auto is accepted         */
    double min, max;      /* numeric bounds; ignored when both are 0    */
} rs_conf_field_t;

typedef struct rs_conf_section_s {
    const char *name;               /* "redis"                          */
    const char *desc;               /* one line                          */
    const rs_conf_field_t *fields;  /* table, owned by the module        */
    int nfields;
    void *base;                     /* struct the table writes into      */
} rs_conf_section_t;

typedef struct rs_conf_s rs_conf_t;

/* New empty configuration.  Free with rs_conf_destroy(). */
rs_conf_t *rs_conf_new(void);
void rs_conf_destroy(rs_conf_t *conf);

/* Register a section; its `base` struct is filled with the defaults right
 * away.  `sec` (and its tables) must outlive conf: they are not copied.
 * Returns RS_ERR_CONFIG if a default does not parse (a programming error). */
rs_err_t rs_conf_add_section(rs_conf_t *conf, const rs_conf_section_t *sec,
                             char *errstr, size_t errstr_size);

/* Register a passthrough section: every scalar key under `name` is set in
 * `kv` (owned by the caller, must outlive conf). */
void rs_conf_add_passthrough(rs_conf_t *conf, const char *name,
                             const char *desc, rs_kv_t *kv);

/* ------------------------------------------------------- raw sections
 *
 * A module whose settings do not fit a flat table (lists of maps, e.g. the
 * feature specs) registers a raw hook.  The hook receives a small read-only
 * document tree (no libyaml types leak out) for every key of its section
 * that the section's table does not know, and reports its own errors
 * naming the key and line (rs_conf_node_err).  Table keys keep their usual
 * scalar behaviour, so `features: {max_keys: 9, specs: [...]}` mixes both. */

typedef enum rs_conf_node_type_e {
    RS_CONF_NODE_SCALAR, /* value != NULL (NUL-terminated)              */
    RS_CONF_NODE_SEQ,    /* n items in kids[0..n)                       */
    RS_CONF_NODE_MAP     /* n pairs: kids[2i] key (scalar), kids[2i+1]  */
} rs_conf_node_type_t;

typedef struct rs_conf_node_s {
    rs_conf_node_type_t type;
    int line;                      /* 1-based line in the source        */
    int is_null;                   /* plain null scalar (`~`, empty)     */
    const char *value;             /* RS_CONF_NODE_SCALAR only          */
    const char *src;               /* source name, for messages         */
    int n;                         /* items (seq) or pairs (map)        */
    struct rs_conf_node_s *kids;   /* [n] (seq) or [2n] (map)           */
} rs_conf_node_t;

/* Value of key `key` in map node `map`, or NULL (also if map is not a
 * map).  Keys are unique (the loader rejects repeats). */
const rs_conf_node_t *rs_conf_node_get(const rs_conf_node_t *map,
                                       const char *key);
/* Fill errstr with "SRC:LINE: <message>" and return RS_ERR_CONFIG. */
rs_err_t rs_conf_node_err(const rs_conf_node_t *node, char *errstr,
                          size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Called once per key of section `section` unknown to its table, in
 * document order.  `key` is the key text, `value` its tree (valid only
 * during the call).  Return RS_OK or an error with errstr filled. */
typedef rs_err_t (*rs_conf_raw_fn)(void *opaque, const char *section,
                                   const char *key,
                                   const rs_conf_node_t *value, char *errstr,
                                   size_t errstr_size);
/* Optional: print the hook's effective settings for rs_conf_dump, as YAML
 * lines indented by two spaces (so the dump still loads back). */
typedef void (*rs_conf_raw_dump_fn)(void *opaque, FILE *fp);

/* Attach a raw hook to section `name`.  If a table section of that name is
 * registered, the hook receives the keys its table lacks; otherwise a new
 * section with no table keys is created and the hook receives every key.
 * Attaching to a section that already has a hook replaces it.  `opaque`
 * must outlive conf.  RS_ERR_CONFIG for a bad name or NULL fn. */
rs_err_t rs_conf_add_raw(rs_conf_t *conf, const char *name, const char *desc,
                         rs_conf_raw_fn fn, rs_conf_raw_dump_fn dump,
                         void *opaque, char *errstr, size_t errstr_size);

/* Document a key that section `section`'s raw hook handles (for --doc,
 * --doc-table and the sample; the loader does not use it): `type` e.g.
 * "list of specs".  The strings are copied.  RS_ERR_CONFIG if the section
 * has no raw hook. */
rs_err_t rs_conf_add_raw_doc(rs_conf_t *conf, const char *section,
                             const char *key, const char *type,
                             const char *desc, char *errstr,
                             size_t errstr_size);

/* Parse YAML text and apply it.  `srcname` names the source in errors.
 * No I/O.  On error nothing is guaranteed about partially applied values;
 * callers treat a config error as fatal (exit 2). */
rs_err_t rs_conf_load_yaml(rs_conf_t *conf, const char *buf, size_t len,
                           const char *srcname, char *errstr,
                           size_t errstr_size);

/* Read `path` and call rs_conf_load_yaml.  RS_ERR_IO if unreadable (the
 * message names the path and strerror), RS_ERR_TOOBIG above 1 MiB. */
rs_err_t rs_conf_load_file(rs_conf_t *conf, const char *path, char *errstr,
                           size_t errstr_size);

/* Set one value by dotted key ("redis.url", "kafka.client.id"), e.g. from
 * a command-line flag.  Same validation as the YAML path. */
rs_err_t rs_conf_set(rs_conf_t *conf, const char *key, const char *value,
                     char *errstr, size_t errstr_size);

/* Print the effective configuration as YAML (passthrough values whose key
 * contains "password", "secret" or "token" are printed as "***", and so
 * are non-empty string fields with such a name).  The output loads back
 * with rs_conf_load_yaml (masked values aside). */
void rs_conf_dump(const rs_conf_t *conf, FILE *fp);

/* Print a Markdown reference (section, key, type, default, description). */
void rs_conf_doc_markdown(const rs_conf_t *conf, FILE *fp);

/* Print one Markdown table (key, type, default, description) of the keys
 * named in `keys`, a comma list of whole sections ("seq") and dotted keys
 * ("model.label_horizon"), in that order; keys are shown dotted.  For the
 * tables of defaults inside docs/ (ops/docs.sh).  RS_ERR_NOTFOUND naming
 * an unknown section or key, before anything is printed. */
rs_err_t rs_conf_doc_table(const rs_conf_t *conf, const char *keys, FILE *fp,
                           char *errstr, size_t errstr_size);

/* Print a sample configuration: every section and key with its
 * description, type, range and default as comments above its effective
 * value (defaults + file + sets, secrets masked as in rs_conf_dump), and
 * the documented raw keys as comments.  Loads back like the dump. */
void rs_conf_sample(const rs_conf_t *conf, FILE *fp);

#ifdef __cplusplus
}
#endif
#endif /* RS_CONFIG_H */
