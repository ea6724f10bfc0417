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
    RS_CONF_DURATION, /* int64_t milliseconds; "250ms", "10s", "7d"    */
    RS_CONF_ENUM      /* int: index into `choices` ("json|protobuf")   */
} rs_conf_type_t;

typedef struct rs_conf_field_s {
    const char *name;     /* key inside its section                     */
    rs_conf_type_t type;
    const char *def;      /* default, as text (parsed like a YAML value) */
    size_t offset;        /* offsetof() in the section struct           */
    size_t size;          /* RS_CONF_STRING: sizeof the char array      */
    const char *desc;     /* one line for --help and docs               */
    const char *choices;  /* RS_CONF_ENUM: "a|b|c"                      */
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

#ifdef __cplusplus
}
#endif
#endif /* RS_CONFIG_H */
