/* main.c -- `riskstream`: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} rs_cmds[] = {
    {"serve", rs_cmd_serve, "consume events and labels, score, publish to Kafka and Redis"},
    {"gen", rs_cmd_gen, "generate a deterministic synthetic stream (cards or --sensors)"},
    {"demo", rs_cmd_demo, "embedded Kafka + generator + service with a live progress line"},
    {"bench", rs_cmd_bench, "end-to-end throughput and latency on the embedded stack"},
    {"features", rs_cmd_features, "explain the feature layout or export feature vectors of a file"},
    {"broker", rs_cmd_broker, "run the embedded Kafka (mock cluster) on its own"},
    {"eval", rs_cmd_eval, "replay a file test-then-train and compare the models (AUC, AP, P@k)"},
    {"train", rs_cmd_train, "bootstrap a model offline from a history file (for serve --model)"},
    {"audit", rs_cmd_audit, "print a past decision (or an entity's) from the Redis score store"},
    {"api", rs_cmd_api, "serve the HTTP API (score lookups, per-decision page) over Redis"},
    {"model", rs_cmd_model, "list a running service's model versions, or roll it back to one"},
    {"config", rs_cmd_config, "print the effective configuration or its reference"},
};

static void rs_main_usage(FILE *fp) {
    fprintf(fp,
            "riskstream %s -- real-time streaming risk scoring\n\n"
            "usage: riskstream <command> [options]   (riskstream <command> --help)\n"
            "       riskstream --version               (version, commit, build, "
            "libraries)\n\n"
            "commands:\n",
            RS_VERSION_STRING);
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_cmds); i++)
        fprintf(fp, "  %-8s %s\n", rs_cmds[i].name, rs_cmds[i].help);
    fprintf(fp, "\nexit codes: 0 success, 1 runtime failure, 2 usage or "
                "configuration error\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        rs_main_usage(stderr);
        return RS_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        rs_main_usage(stdout);
        return RS_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        rs_build_info_print(stdout);
        return RS_EXIT_OK;
    }
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_cmds); i++)
        if (!strcmp(argv[1], rs_cmds[i].name))
            return rs_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "riskstream: unknown command '%s'\n\n", argv[1]);
    rs_main_usage(stderr);
    return RS_EXIT_USAGE;
}
