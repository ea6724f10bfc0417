/* replay.h -- the replay of a history file shared by `eval` and `train`:
 * read the input (and the labels / truth files) into memory, check the
 * event ids, index the events with rs_eval_input and join the labels,
 * report the bad lines by file, make the rs_eval with its learning logs in
 * a private temporary directory, and drive rs_eval_push in time order with
 * the progress bar.  What the two commands do around it (the truth join,
 * maintenance labels, the report, the model file) stays in cmd_eval.c and
 * cmd_train.c.
 *
 * Every step prints its own message ("riskstream CMD: ...", the same text
 * both commands printed before) and returns an exit code (cli.h), so a
 * command goes to its cleanup on anything but RS_EXIT_OK.
 *
 * Ownership: an rs_replay_t lives on the command's stack; the buffers, the
 * input, the rs_eval and the temporary directory it fills are its own and
 * rs_replay_fini releases them all (at any step, also after a failed one).
 * The path and name strings are the caller's and must outlive it.
 *
 * Threads: the command's (main) thread only; rs_replay_run reads
 * rs_cli_stop, set by the signal handlers it installs. */
#ifndef RS_CLI_REPLAY_H
#define RS_CLI_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "ops/eval/eval.h"

typedef struct rs_replay_s {
    /* the caller's (rs_replay_init) */
    const char *cmd;             /* "eval" or "train": message prefix       */
    const char *input;           /* events file ("-" = stdin)               */
    const char *labels;          /* labels file or NULL                     */
    const char *truth;           /* truth file or NULL                      */
    /* owned: filled by the steps, released by rs_replay_fini */
    char *buf, *lbuf, *tbuf;     /* input, labels, truth file contents      */
    size_t len, llen, tlen;
    rs_eval_input_t *in;         /* rs_replay_load                          */
    rs_eval_t *ev;               /* rs_replay_eval_new                      */
    char *logdir;                /* the learning logs' temporary directory  */
    /* results */
    rs_eval_input_stats_t ist;   /* rs_replay_check                         */
    uint64_t nbad;               /* bad lines of the files read             */
    size_t n;                    /* good events (rs_eval_input_count)       */
    uint64_t rejected;           /* rs_replay_run: events rs_eval refused   */
    double replay_s;             /* rs_replay_run: wall time of the loop    */
} rs_replay_t;

/* Zero `r` and set the caller's strings (labels, truth may be NULL). */
void rs_replay_init(rs_replay_t *r, const char *cmd, const char *input,
                    const char *labels, const char *truth);

/* Read the input, the labels and the truth file (those given), in that
 * order ("cannot read FILE: ...", RS_EXIT_RUNTIME); check the event ids
 * (rs_cli_check_ids: RS_EXIT_USAGE); index the events and join the
 * labels (rs_eval_input_new; "INPUT:error", RS_EXIT_RUNTIME).  `map` is
 * the parsed --map (map_given: --map was given).  `rtf` (eval's
 * run-to-failure rows, fmt RS_EVAL_FMT_RTF): no id check (the ids are
 * unit + cycle) and rs_eval_input_new_rtf with these settings; NULL: `fmt`
 * alone decides (train).  The truth buffer (r->tbuf) is left for the
 * caller to join. */
int rs_replay_load(rs_replay_t *r, rs_eval_format_t fmt,
                   const rs_csv_map_t *map, int map_given,
                   const rs_rtf_conf_t *rtf);

/* After the joins: the input's stats into r->ist, each kept bad-line
 * message on stderr under its file (a "labels " / "truth " prefix names
 * the file), the total when more were skipped -- counting the truth file
 * in the total and in the message when `with_truth` -- and r->nbad, r->n.
 * No valid event: "no valid event in INPUT", RS_EXIT_RUNTIME. */
int rs_replay_check(rs_replay_t *r, int with_truth);

/* A private directory $TMPDIR/riskstream-CMD-XXXXXX for the models'
 * learning logs (ec->log_dir; "cannot create a temporary directory for the
 * LOGS: ...", RS_EXIT_RUNTIME; `logs` is "learning logs" or "learning
 * log"), then rs_eval_new(ec) into r->ev (its error as a usage error,
 * RS_EXIT_USAGE).  Sets ec->log_dir to the directory, which r owns. */
int rs_replay_eval_new(rs_replay_t *r, rs_eval_conf_t *ec, const char *logs);

/* Called for every event rs_eval_push accepted, with the models' scores
 * `sc` [rs_eval_nmodels]. */
typedef void (*rs_replay_row_fn)(void *opaque, const rs_event_t *e,
                                 const rs_eval_rec_t *rec, const float *sc);

/* Install the signal handlers and replay the r->n events in time order
 * through rs_eval_push until the end or rs_cli_stop, with the progress bar
 * on stderr (unless `quiet` or stderr is not a terminal).  An event the
 * evaluator refuses is counted in r->rejected and the first
 * RS_EVAL_ERRORS_KEPT are reported ("INPUT:line N: error (skipped)").
 * `row` (may be NULL: the scores are then not asked for) sees every
 * accepted event.  Returns the number of events visited (r->n unless
 * interrupted); r->replay_s is the loop's wall time. */
size_t rs_replay_run(rs_replay_t *r, int quiet, rs_replay_row_fn row,
                     void *opaque);

/* Destroy the rs_eval, remove the temporary directory, destroy the input
 * and free the buffers; `r` is zeroed but for the caller's strings.
 * Safe after any step and twice. */
void rs_replay_fini(rs_replay_t *r);

#endif
