/* replay.c -- the history replay shared by `eval` and `train` (replay.h).
 * The I/O and the messages live here; rs_eval_input and rs_eval do none. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "replay.h"

void rs_replay_init(rs_replay_t *r, const char *cmd, const char *input,
                    const char *labels, const char *truth) {
    memset(r, 0, sizeof(*r));
    r->cmd = cmd;
    r->input = input;
    r->labels = labels;
    r->truth = truth;
}

/* One file into *buf, or the "cannot read" message. */
static int rs_replay_read(const rs_replay_t *r, const char *path, char **buf,
                          size_t *len) {
    if ((*buf = rs_cli_slurp(path, len))) return 1;
    fprintf(stderr, "riskstream %s: cannot read %s: %s\n", r->cmd, path,
            strerror(errno));
    return 0;
}

int rs_replay_load(rs_replay_t *r, rs_eval_format_t fmt,
                   const rs_csv_map_t *map, int map_given,
                   const rs_rtf_conf_t *rtf) {
    char errstr[512];
    if (!rs_replay_read(r, r->input, &r->buf, &r->len) ||
        (r->labels && !rs_replay_read(r, r->labels, &r->lbuf, &r->llen)) ||
        (r->truth && !rs_replay_read(r, r->truth, &r->tbuf, &r->tlen)))
        return RS_EXIT_RUNTIME;
    /* Unique event ids (bounded check of the first records): exit 2. */
    rs_cli_in_t in_kind = fmt == RS_EVAL_FMT_CSV ? RS_CLI_IN_CSV
                          : fmt == RS_EVAL_FMT_JSON_MAP ? RS_CLI_IN_JSON_MAP
                                                        : RS_CLI_IN_JSONL;
    if (!rtf && /* rtf ids are unit + cycle */
        rs_cli_check_ids(r->cmd, r->input, r->buf, r->len, in_kind, map,
                         map_given) != RS_EXIT_OK)
        return RS_EXIT_USAGE;
    r->in = rtf ? rs_eval_input_new_rtf(r->buf, r->len, rtf, errstr,
                                        sizeof(errstr))
                : rs_eval_input_new(r->buf, r->len, fmt, map, errstr,
                                    sizeof(errstr));
    if (!r->in) {
        fprintf(stderr, "riskstream %s: %s:%s\n", r->cmd, r->input, errstr);
        return RS_EXIT_RUNTIME;
    }
    if (r->lbuf) rs_eval_input_join_labels(r->in, r->lbuf, r->llen);
    return RS_EXIT_OK;
}

int rs_replay_check(rs_replay_t *r, int with_truth) {
    const rs_eval_input_stats_t *ist = &r->ist;
    rs_eval_input_stats(r->in, &r->ist);
    /* Each kept message says which file by its prefix ("labels line 3"). */
    for (int i = 0; i < ist->nerrors; i++) {
        const char *msg = ist->errors[i], *file = r->input;
        if (!strncmp(msg, "labels ", 7)) { file = r->labels; msg += 7; }
        else if (with_truth && !strncmp(msg, "truth ", 6)) {
            file = r->truth;
            msg += 6;
        }
        fprintf(stderr, "riskstream %s: %s:%s (skipped)\n", r->cmd, file,
                msg);
    }
    r->nbad = ist->bad + ist->labels_bad + (with_truth ? ist->truth_bad : 0);
    if (r->nbad > (uint64_t)ist->nerrors) {
        fprintf(stderr, "riskstream %s: ... %llu bad lines in all (%llu "
                "events, %llu labels", r->cmd, (unsigned long long)r->nbad,
                (unsigned long long)ist->bad,
                (unsigned long long)ist->labels_bad);
        if (with_truth)
            fprintf(stderr, ", %llu truth",
                    (unsigned long long)ist->truth_bad);
        fprintf(stderr, "), skipped\n");
    }
    r->n = rs_eval_input_count(r->in);
    if (!r->n) {
        fprintf(stderr, "riskstream %s: no valid event in %s\n", r->cmd,
                r->input);
        return RS_EXIT_RUNTIME;
    }
    return RS_EXIT_OK;
}

int rs_replay_eval_new(rs_replay_t *r, rs_eval_conf_t *ec, const char *logs) {
    char errstr[512];
    /* the models' learning logs: on disk, removed by rs_replay_fini */
    if (!(r->logdir = rs_cli_tmpdir(r->cmd))) {
        fprintf(stderr, "riskstream %s: cannot create a temporary directory "
                "for the %s: %s\n", r->cmd, logs, strerror(errno));
        return RS_EXIT_RUNTIME;
    }
    ec->log_dir = r->logdir;
    if (!(r->ev = rs_eval_new(ec, errstr, sizeof(errstr)))) {
        rs_cli_usage_error(r->cmd, "%s", errstr);
        return RS_EXIT_USAGE;
    }
    return RS_EXIT_OK;
}

size_t rs_replay_run(rs_replay_t *r, int quiet, rs_replay_row_fn row,
                     void *opaque) {
    char errstr[512];
    rs_cli_signals();
    rs_cli_bar_t bar = {!quiet && isatty(STDERR_FILENO), r->n,
                        rs_clock_mono_us(), 0};
    int64_t t_replay = rs_clock_mono_us();
    rs_event_t e;
    rs_eval_rec_t rec;
    float sc[RS_EVAL_MODELS_MAX];
    size_t i;
    for (i = 0; i < r->n && !rs_cli_stop; i++) {
        if (rs_eval_input_get(r->in, i, &e, &rec) != RS_OK) continue;
        if (rs_eval_push(r->ev, &rec, row ? sc : NULL, errstr,
                         sizeof(errstr)) != RS_OK) {
            if (r->rejected++ < RS_EVAL_ERRORS_KEPT)
                fprintf(stderr, "%sriskstream %s: %s:line %u: %s (skipped)\n",
                        bar.on ? "\r\033[K" : "", r->cmd, r->input,
                        (unsigned)rs_eval_input_line(r->in, i), errstr);
            continue;
        }
        if (row) row(opaque, &e, &rec, sc);
        if ((i & 4095) == 0) rs_cli_bar_draw(&bar, i, 0);
    }
    rs_cli_bar_draw(&bar, i, 1);
    r->replay_s = (double)(rs_clock_mono_us() - t_replay) / 1e6;
    return i;
}

void rs_replay_fini(rs_replay_t *r) {
    rs_eval_destroy(r->ev);
    rs_cli_rmtree(r->logdir);
    free(r->logdir);
    rs_eval_input_destroy(r->in);
    free(r->buf);
    free(r->lbuf);
    free(r->tbuf);
    rs_replay_init(r, r->cmd, r->input, r->labels, r->truth);
}
