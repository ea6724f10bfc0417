/* cli.h -- the `riskstream` command line: one function per subcommand.
 * Every subcommand parses its own flags, prints --help, and returns one of
 * the documented exit codes (RS_EXIT_OK, RS_EXIT_RUNTIME, RS_EXIT_USAGE). */
#ifndef RS_CLI_H
#define RS_CLI_H

#include <getopt.h>
#include <stdlib.h>
#include <signal.h>

#include "scoring/scoring.h"

int rs_cmd_serve(int argc, char **argv);
int rs_cmd_gen(int argc, char **argv);
int rs_cmd_demo(int argc, char **argv);
int rs_cmd_bench(int argc, char **argv);
int rs_cmd_config(int argc, char **argv);
int rs_cmd_features(int argc, char **argv);
int rs_cmd_broker(int argc, char **argv);
int rs_cmd_eval(int argc, char **argv);
int rs_cmd_train(int argc, char **argv);
int rs_cmd_audit(int argc, char **argv);
int rs_cmd_api(int argc, char **argv);
int rs_cmd_model(int argc, char **argv);

struct rs_gen_conf_s;
/* rs_app_conf_init + the `gen:` section bound to *gconf (defaults filled),
 * so one YAML file serves every subcommand.  Returns an exit code. */
int rs_cli_app_init(const char *cmd, rs_app_conf_t *app,
                    struct rs_gen_conf_s *gconf);
/* Generator flags shared by gen, demo and bench (option values 2000..2006):
 * 1 handled, 0 not a generator flag, -1 bad value (message printed). */
int rs_cli_gen_opt(int c, const char *arg, struct rs_gen_conf_s *g,
                   const char *cmd);

/* The readable report of one decision, as `riskstream audit EVENT_ID`
 * prints it (cmd_audit.c; the demo ends with one). */
void rs_cli_audit_report(const rs_score_t *sc, FILE *fp);

/* Set by SIGINT/SIGTERM handlers installed with rs_cli_signals(). */
extern volatile sig_atomic_t rs_cli_stop;
void rs_cli_signals(void);

/* Print "riskstream <cmd>: <msg>" to stderr and return RS_EXIT_USAGE. */
int rs_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Options shared by serve/demo/bench: --config, --brokers, --redis,
 * --group, --set KEY=VALUE, --log-level.  Returns 1 if argv[*i] was one of
 * them (consuming its value), 0 if not, -1 on error (message printed). */
typedef struct rs_cli_common_s {
    const char *config_path;
    const char *brokers, *redis, *group, *log_level;
    int nsets;
    const char *sets[64];
} rs_cli_common_t;

/* getopt_long option rows for the common flags (terminated by a zero
 * row), their short-option string, and the handler for one parsed option:
 * returns 1 if `c` was a common option, 0 if not, -1 on error. */
extern const struct option rs_cli_common_opts[];
#define RS_CLI_COMMON_SHORT "c:b:r:g:s:l:h"
int rs_cli_common_opt(const char *cmd, int c, const char *arg,
                      rs_cli_common_t *co);
/* A common flag the subcommand has no use for (it would be taken and
 * ignored): a usage error naming it.  `unused`: RS_CLI_NO_* bits.
 * Returns RS_EXIT_OK or RS_EXIT_USAGE (message printed). */
#define RS_CLI_NO_BROKERS 1
#define RS_CLI_NO_REDIS   2
#define RS_CLI_NO_GROUP   4
int rs_cli_common_unused(const char *cmd, const rs_cli_common_t *co,
                         int unused);
/* Build a getopt_long table: common rows + `extra` rows (zero-terminated)
 * into `out` (capacity 64). */
void rs_cli_opts_merge(struct option *out, const struct option *extra);

/* rs_cli_app_init + rs_cli_load_conf; on failure `app` is already
 * destroyed.  Returns an exit code. */
int rs_cli_app_load(const char *cmd, rs_app_conf_t *app,
                    struct rs_gen_conf_s *gconf, const rs_cli_common_t *co);

/* Load the config file and apply --set overrides onto `app`.  Returns
 * RS_EXIT_OK or RS_EXIT_USAGE (message printed naming the key/file). */
int rs_cli_load_conf(const char *cmd, rs_app_conf_t *app,
                     const rs_cli_common_t *co);

/* Whole file (or stdin for "-") into a malloc'd buffer (free with free());
 * NULL with errno set on a read error. */
char *rs_cli_slurp(const char *path, size_t *len);

/* A new private directory $TMPDIR/riskstream-<what>-XXXXXX (malloc'd
 * path), or NULL with errno.  rs_cli_rmtree removes a directory and
 * everything under it (NULL: no-op; errors ignored: cleanup). */
char *rs_cli_tmpdir(const char *what);
void rs_cli_rmtree(const char *dir);

struct rs_learner_stats_s;
/* The after-run learning summary of one model (eval, train): what it
 * learned from labels and at maturity, the observed delay and horizon,
 * and, when it learned no positive, why.  positives_in: positive labels
 * in the input; in_flight: labels not yet due at the end. */
/* Warn on stderr ("riskstream CMD: warning: ...") about features that were
 * constant over the whole run (rs_features_constant): they carry no
 * information, e.g. a window shorter than the reading cadence. */
struct rs_features_s;
void rs_cli_warn_constant(const char *cmd, const struct rs_features_s *f);

void rs_cli_learning_summary(FILE *fp, const char *name,
                             const rs_model_stats_t *ms,
                             const struct rs_learner_stats_s *ls,
                             uint64_t positives_in, uint64_t in_flight);

/* Event ids must be unique (labels, the score store and --rescore find
 * events by them); a --map id= that names, say, the card column makes
 * every label join the wrong event, silently.  rs_cli_check_ids decodes
 * the first RS_CLI_IDS_CHECK complete records of buf[0..len) (bounded: a
 * prefix, so it costs a fraction of the run) and counts the events whose
 * id an earlier one already had.  More than 1 %: a message naming the id
 * column (or field) and the counts, RS_EXIT_USAGE.  Fewer: a warning,
 * RS_EXIT_OK.  Records that do not decode are skipped (the reader reports
 * them).  `what` names the input in messages. */
typedef enum rs_cli_in_e {
    RS_CLI_IN_JSONL,     /* the project's Event JSON ("id" field)         */
    RS_CLI_IN_JSON_MAP,  /* flat foreign JSON through the mapping          */
    RS_CLI_IN_CSV        /* CSV with a header, through the mapping         */
} rs_cli_in_t;
#define RS_CLI_IDS_CHECK 200000
int rs_cli_check_ids(const char *cmd, const char *what, const char *buf,
                     size_t len, rs_cli_in_t kind, const rs_csv_map_t *map,
                     int map_given);

/* A one-line progress bar with rate and ETA on stderr (when `on`). */
typedef struct rs_cli_bar_s {
    int on;
    size_t total;
    int64_t t0_us, last_us;
} rs_cli_bar_t;
/* Redraw at most every 200 ms, and always when `final` (then newline). */
void rs_cli_bar_draw(rs_cli_bar_t *b, size_t done, int final);

/* The label action of the HTTP API (rs_http_set_labeler) backed by a
 * Kafka label producer (`opaque` is an rs_sink_label_t): waits up to 10 s
 * for the acknowledgement.  @locality any thread */
rs_err_t rs_cli_send_label(void *opaque, const rs_label_t *lb, char *errstr,
                           size_t errstr_size);

/* Config keys behind --brokers, --redis and --group. */
#define RS_CONF_KEY_BROKERS   "topics.brokers"
#define RS_CONF_KEY_REDIS_URL "redis.url"
#define RS_CONF_KEY_GROUP     "topics.group_id"

/* The common flags' --help rows, one macro each, so a subcommand that
 * refuses some (rs_cli_common_unused) lists only those it takes. */
#define RS_CLI_HELP_CONFIG                                                    \
    "  -c, --config FILE     YAML configuration (see docs/config.md)\n"
#define RS_CLI_HELP_BROKERS                                                   \
    "  -b, --brokers LIST    Kafka bootstrap servers host:port,... (default:\n" \
    "                        start the embedded librdkafka mock cluster)\n"
#define RS_CLI_HELP_REDIS                                                     \
    "  -r, --redis URL       redis://host:port[/db] or unix:///path\n"
#define RS_CLI_HELP_GROUP                                                     \
    "  -g, --group ID        Kafka consumer group (default riskstream)\n"
#define RS_CLI_HELP_REST                                                      \
    "  -s, --set KEY=VALUE   override one config key, e.g. redis.ttl=1d,\n"    \
    "                        kafka.fetch.wait.max.ms=5 (repeatable)\n"        \
    "  -l, --log-level LVL   debug|info|warn|error (default info)\n"         \
    "  -h, --help            this help\n"
#define RS_CLI_COMMON_HELP                                                    \
    RS_CLI_HELP_CONFIG RS_CLI_HELP_BROKERS RS_CLI_HELP_REDIS                  \
    RS_CLI_HELP_GROUP RS_CLI_HELP_REST

#endif
