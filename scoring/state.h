/* state.h -- the service's state directory and its partition-local stores.
 *
 * Design note
 * -----------
 * Everything riskstream must not lose across a restart lives under ONE
 * directory (Kafka Streams' state.dir is the model), per consumer group:
 *
 *   <state.dir>/<group_id>/
 *       checkpoint               feature state + input positions + caches
 *       models/                  published model versions (model store)
 *       label-delays             observed label delays (auto horizon)
 *       learn/<lineage>/p<N>/    learning log of input partition N
 *
 * <lineage> names the model's record layout (kind, architecture, feature
 * names: rs_model_lrec_meta): a configuration that changes the features
 * starts a new lineage beside the old one instead of misreading it.
 *
 * state.dir "" (the default) resolves to $RISKSTREAM_STATE_DIR, else
 * /var/lib/riskstream when running as root, else
 * $XDG_STATE_HOME/riskstream (~/.local/state/riskstream).  With the
 * embedded broker (no brokers configured) and state.dir unset, the state
 * is EPHEMERAL: a private temporary directory removed at exit, because the
 * embedded broker's topics do not survive the process either.
 *
 * Learning logs are opened lazily, the first time a partition is seen
 * (the service asks when a partition is assigned, and again at its first
 * event: cold path) and kept until rs_state_close_log or destroy.
 *
 * Threads: an rs_state_t is owned by the service thread.
 */
#ifndef RS_STATE_H
#define RS_STATE_H

#include "common/common.h"
#include "common/config.h"
#include "model/learnlog.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_STATE_MAX_PARTS 4096 /* partitions with a learning log */

/* `state:` section. */
typedef struct rs_state_conf_s {
    char dir[512];            /* "" = the default (design note)          */
    int changelog;            /* RS_STATE_CHANGELOG_*                    */
    int64_t standby;          /* standby replicas (scoring/standby.h)    */
} rs_state_conf_t;

/* state.changelog (scoring/changelog.h) */
#define RS_STATE_CHANGELOG_AUTO 0  /* on with real brokers (topics.brokers
                                    * or kafka.bootstrap.servers), off
                                    * with the embedded one             */
#define RS_STATE_CHANGELOG_ON 1
#define RS_STATE_CHANGELOG_OFF 2

void rs_state_conf_section(rs_conf_section_t *sec, rs_state_conf_t *conf);

/* The directory state.dir resolves to when it is "" and the state is not
 * ephemeral (design note).  Pure but for the environment. */
void rs_state_default_dir(char *buf, size_t size);

typedef struct rs_state_s rs_state_t;

/* Open (creating) <dir>/<group>: dir = conf->dir, or the default, or --
 * with `ephemeral` and conf->dir empty -- a new temporary directory
 * removed by rs_state_destroy.  meta / segment_bytes: the learning logs'.
 * NULL + errstr (RS_ERR_IO) if the directory cannot be created. */
rs_state_t *rs_state_new(const rs_state_conf_t *conf, const char *group,
                         int ephemeral, const rs_learnlog_meta_t *meta,
                         int64_t segment_bytes, char *errstr,
                         size_t errstr_size);
/* Close every log (files stay, but for an ephemeral directory, removed).
 * NULL is a no-op. */
void rs_state_destroy(rs_state_t *st);

/* <dir>/<group> */
const char *rs_state_dir(const rs_state_t *st);
int rs_state_ephemeral(const rs_state_t *st);
/* <dir>/<group>/<name> into buf. */
void rs_state_path(const rs_state_t *st, const char *name, char *buf,
                   size_t size);

/* The learning log of `partition` (opened at the first call).  NULL +
 * errstr if it cannot be opened (RS_ERR_CONFIG: records of another
 * layout in a directory of this lineage -- not expected; RS_ERR_IO). */
rs_learnlog_t *rs_state_log(rs_state_t *st, int32_t partition,
                            rs_err_t *err, char *errstr, size_t errstr_size);
/* The log if open, else NULL (no I/O). */
rs_learnlog_t *rs_state_log_if_open(const rs_state_t *st, int32_t partition);
/* Close one partition's log (its files stay). */
void rs_state_close_log(rs_state_t *st, int32_t partition);

#ifdef __cplusplus
}
#endif
#endif /* RS_STATE_H */
