/* cmd_broker.c -- `riskstream broker`: run the embedded Kafka (librdkafka
 * mock cluster) on its own, so services can be stopped, killed and
 * restarted against the same topics (tests, demos, local development). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void rs_broker_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream broker [--config FILE] [--set KEY=VALUE]... "
        "[--group ID] [--nodes N]\n\n"
        "Start librdkafka's mock cluster with the configured topics (topics.*,\n"
        "topics.partitions, and <topics.group_id>-state-changelog, the state\n"
        "changelog of that group: the mock neither creates nor compacts\n"
        "topics for serve), print `kafka bootstrap: HOST:PORT` and serve until\n"
        "SIGINT/SIGTERM.  Point `serve --brokers`, `gen --brokers` and kcat at\n"
        "it.  Like every mock cluster it keeps only ~5 MB per partition.\n\n"
        "options:\n" RS_CLI_HELP_CONFIG RS_CLI_HELP_GROUP RS_CLI_HELP_REST
        "  -n, --nodes N         mock brokers (default 1)\n");
}

int rs_cmd_broker(int argc, char **argv) {
    static const struct option extra[] = {{"nodes", required_argument, NULL, 'n'},
                                          {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    int nodes = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "n:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("broker", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        if (c == 'h') { rs_broker_help(stdout); return RS_EXIT_OK; }
        if (c == 'n') {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 16)
                return rs_cli_usage_error("broker", "--nodes '%s': expected "
                                          "1 to 16", optarg);
            nodes = (int)v;
            continue;
        }
        rs_broker_help(stderr);
        return RS_EXIT_USAGE;
    }
    if (optind < argc)
        return rs_cli_usage_error("broker", "unexpected argument '%s'",
                                  argv[optind]);
    /* it is the broker, and talks to no Redis; --group names the state
     * changelog topic it creates (<topics.group_id>-state-changelog) */
    if (rs_cli_common_unused("broker", &co, RS_CLI_NO_BROKERS |
                                                RS_CLI_NO_REDIS))
        return RS_EXIT_USAGE;
    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_init("broker", &app, &gconf);
    if (rc != RS_EXIT_OK) return rc;
    if ((rc = rs_cli_load_conf("broker", &app, &co)) != RS_EXIT_OK) {
        rs_app_conf_destroy(&app);
        return rc;
    }
    char errstr[512], changelog[300];
    /* The state changelog of topics.group_id (scoring/changelog.h): the
     * mock has no CreateTopics for serve to create it with. */
    snprintf(changelog, sizeof(changelog), "%s-state-changelog",
             app.ingest.group_id);
    const char *topics[] = {app.ingest.topic_events, app.ingest.topic_labels,
                            app.ingest.topic_scores, app.ingest.topic_alerts,
                            app.ingest.topic_dlq, changelog};
    rs_cluster_t *cl = rs_cluster_new(nodes, topics, (int)RS_ARRAY_LEN(topics),
                                      (int)app.ingest.partitions, errstr,
                                      sizeof(errstr));
    if (!cl) {
        fprintf(stderr, "riskstream broker: %s\n", errstr);
        rs_app_conf_destroy(&app);
        return RS_EXIT_RUNTIME;
    }
    printf("kafka bootstrap: %s\n", rs_cluster_bootstraps(cl));
    fflush(stdout);
    /* Retention drops (~5 MB per partition) are logged at error level. */
    if (rs_cluster_watch(cl, 2000, errstr, sizeof(errstr)) != RS_OK)
        fprintf(stderr, "riskstream broker: %s (retention drops will not be "
                "reported)\n", errstr);
    rs_cli_signals();
    while (!rs_cli_stop) usleep(100000);
    rs_cluster_destroy(cl);
    rs_app_conf_destroy(&app);
    return RS_EXIT_OK;
}
