/* cmd_config.c -- `riskstream config`: print the effective configuration
 * (defaults + file + --set) as YAML, or the Markdown reference (--doc). */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void rs_config_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream config [--config FILE] [--set KEY=VALUE]... [--doc]\n\n"
        "Print the effective configuration as YAML (secrets masked), or with\n"
        "--doc the reference of every key (Markdown, as in docs/config.md).\n"
        "A bad file or key exits with 2 and names the key and line.\n\n"
        "options:\n" RS_CLI_COMMON_HELP
        "      --doc             print the reference instead\n");
}

int rs_cmd_config(int argc, char **argv) {
    static const struct option extra[] = {{"doc", no_argument, NULL, 1000},
                                          {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    int doc = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT, opts, NULL)) !=
           -1) {
        int r = rs_cli_common_opt("config", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        if (c == 'h') { rs_config_help(stdout); return RS_EXIT_OK; }
        if (c == 1000) { doc = 1; continue; }
        rs_config_help(stderr);
        return RS_EXIT_USAGE;
    }
    rs_app_conf_t app;
    rs_gen_conf_t gconf; /* accepted in the file so one YAML serves all */
    int rc0 = rs_cli_app_init("config", &app, &gconf);
    if (rc0 != RS_EXIT_OK) return rc0;
    int rc = rs_cli_load_conf("config", &app, &co);
    if (rc == RS_EXIT_OK) {
        if (doc) rs_conf_doc_markdown(app.conf, stdout);
        else rs_conf_dump(app.conf, stdout);
    }
    rs_app_conf_destroy(&app);
    return rc;
}
