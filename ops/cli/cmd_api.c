/* cmd_api.c -- `riskstream api`: the HTTP API (scoring/http.h) on its own,
 * against the Redis score store, until SIGINT/SIGTERM; with --brokers
 * (topics.brokers) also a Kafka producer for the analysts' label action.
 *
 * The `http:` section is registered on the app registry here, so one YAML
 * file serves every subcommand.  Exit codes: 0 stopped by a signal, 1 the
 * port cannot be bound, 2 usage or configuration error. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ops/gen/gen.h"
#include "scoring/http.h"

static void rs_api_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream api [--redis URL] [--brokers LIST] [--config FILE]\n"
        "                      [--bind ADDR] [--port N] [--set KEY=VALUE]...\n\n"
        "Serve the HTTP API over the Redis score store until SIGINT/SIGTERM,\n"
        "and print `http: http://ADDR:PORT` once listening:\n"
        "  GET /                                the alert queue (analysts' start)\n"
        "  GET /v1/alerts/view, /v1/alerts      the alert queue, filterable (HTML,\n"
        "                                       JSON)\n"
        "  GET /v1/scores/EVENT_ID/view         the case view of a decision\n"
        "  GET /v1/scores/EVENT_ID              the stored score record (JSON)\n"
        "  POST /v1/scores/EVENT_ID/label       confirm fraud / dismiss: a Label\n"
        "                                       to topics.labels (needs --brokers)\n"
        "  GET /v1/entities/ID/view             an entity's events\n"
        "  GET /v1/entities/ID/scores?since=T&limit=N\n"
        "                                       an entity's records, newest first\n"
        "  GET /v1/search?q=ID                  an event or an entity\n"
        "  GET /healthz                         \"ok\"\n"
        "With http.token_env set, requests need `Authorization: Bearer TOKEN`\n"
        "(the token read from that environment variable); pages sign in once.\n"
        "See docs/audit.md.\n\n"
        "options:\n"
        "  -c, --config FILE     YAML configuration (`http:`, `redis:`, `topics:`,\n"
        "                        `kafka:` sections)\n"
        "  -r, --redis URL       redis://host:port[/db] or unix:///path\n"
        "  -b, --brokers LIST    Kafka bootstrap servers: turns the label action\n"
        "                        on (topics.labels, topics.labels_format)\n"
        "      --bind ADDR       listen address (http.bind, default 127.0.0.1)\n"
        "  -p, --port N          listen port (http.port, default 8080; 0 = any)\n"
        "  -s, --set KEY=VALUE   override one config key, e.g. http.threads=8\n"
        "  -l, --log-level LVL   debug|info|warn|error (default info)\n"
        "  -h, --help            this help\n\n"
        "exit codes: 0 stopped by a signal, 1 runtime failure (port in use),\n"
        "2 usage or configuration error\n");
}

int rs_cmd_api(int argc, char **argv) {
    static const struct option extra[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 1000},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *port = NULL, *bind = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "p:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("api", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'h': rs_api_help(stdout); return RS_EXIT_OK;
        case 'p': port = optarg; break;
        case 1000: bind = optarg; break;
        default: rs_api_help(stderr); return RS_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return rs_cli_usage_error("api", "unexpected argument '%s'",
                                  argv[optind]);
    if (rs_cli_common_unused("api", &co, RS_CLI_NO_GROUP))
        return RS_EXIT_USAGE;

    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    char errstr[512];
    int rc = rs_cli_app_init("api", &app, &gconf);
    if (rc != RS_EXIT_OK) return rc;
    rc = rs_cli_load_conf("api", &app, &co);
    if (rc == RS_EXIT_OK && port &&
        rs_conf_set(app.conf, "http.port", port, errstr, sizeof(errstr)) != RS_OK)
        rc = rs_cli_usage_error("api", "--port: %s", errstr);
    if (rc == RS_EXIT_OK && bind &&
        rs_conf_set(app.conf, "http.bind", bind, errstr, sizeof(errstr)) != RS_OK)
        rc = rs_cli_usage_error("api", "--bind: %s", errstr);
    if (rc == RS_EXIT_OK && !app.redis.url[0])
        rc = rs_cli_usage_error("api", "no Redis configured: pass --redis "
                                "redis://HOST:PORT or unix:///PATH, or set "
                                "redis.url");
    if (rc == RS_EXIT_OK &&
        rs_redis_conf_check(&app.redis, errstr, sizeof(errstr)) != RS_OK)
        rc = rs_cli_usage_error("api", "%s", errstr);
    if (rc != RS_EXIT_OK) {
        rs_app_conf_destroy(&app);
        return rc;
    }

    /* The label action needs a producer: only with brokers configured. */
    rs_sink_label_t *labels = NULL;
    if (app.ingest.brokers[0]) {
        rd_kafka_conf_t *kc = NULL;
        if (rs_kafka_conf_build(&app.kafka, app.ingest.brokers, &kc, errstr,
                                sizeof(errstr)) != RS_OK) {
            rs_app_conf_destroy(&app);
            return rs_cli_usage_error("api", "%s", errstr);
        }
        rd_kafka_conf_destroy(kc);
        labels = rs_sink_label_new(&app.kafka, app.ingest.brokers,
                                   app.ingest.topic_labels,
                                   (rs_format_t)app.ingest.labels_format,
                                   errstr, sizeof(errstr));
        if (!labels) {
            fprintf(stderr, "riskstream api: %s\n", errstr);
            rs_app_conf_destroy(&app);
            return RS_EXIT_RUNTIME;
        }
    }

    rs_cli_signals();
    rs_http_t *http = rs_http_new(&app.http, &app.redis, errstr, sizeof(errstr));
    if (!http) {
        /* A bad address or token variable is configuration (2); a port
         * that cannot be bound is runtime (1). */
        int cfg = !strncmp(errstr, "http.", 5);
        fprintf(stderr, "riskstream api: %s\n", errstr);
        rs_sink_label_destroy(labels);
        rs_app_conf_destroy(&app);
        return cfg ? RS_EXIT_USAGE : RS_EXIT_RUNTIME;
    }
    if (labels)
        rs_http_set_labeler(http, rs_cli_send_label, labels,
                            app.ingest.topic_labels);
    int v6 = strchr(app.http.bind, ':') != NULL;
    printf("http: http://%s%s%s:%d\n", v6 ? "[" : "", app.http.bind, v6 ? "]" : "",
           rs_http_port(http));
    if (labels)
        printf("labels: topic '%s' at %s\n", app.ingest.topic_labels,
               app.ingest.brokers);
    else
        printf("labels: off (no --brokers)\n");
    fflush(stdout);
    while (!rs_cli_stop) usleep(100 * 1000);
    rs_http_destroy(http);
    rs_sink_label_destroy(labels);
    rs_app_conf_destroy(&app);
    return RS_EXIT_OK;
}
