/* cmd_serve.c -- `riskstream serve`: the long-running service. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* HTTP routes of the running service (HTTP threads). */
static int rs_serve_metrics(void *opaque, const char *path, rs_http_buf_t *b,
                            const char **ctype) {
    RS_UNUSED(path);
    rs_service_prometheus(opaque, b);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}

static int rs_serve_readyz(void *opaque, const char *path, rs_http_buf_t *b,
                           const char **ctype) {
    RS_UNUSED(path);
    RS_UNUSED(ctype);
    const char *why = NULL;
    if (rs_service_ready(opaque, &why)) {
        rs_http_buf_printf(b, "ready\n");
        return 200;
    }
    rs_http_buf_printf(b, "not ready: %s\n", why);
    return 503;
}

/* GET /v1/models: the stored versions and the one serving. */
static int rs_serve_models(void *opaque, const char *path, rs_http_buf_t *b,
                           const char **ctype) {
    if (strcmp(path, "/v1/models")) {
        rs_http_buf_printf(b, "{\"error\":\"not found\"}\n");
        *ctype = "application/json";
        return 404;
    }
    rs_service_models_json(opaque, b);
    *ctype = "application/json";
    return 200;
}

/* POST /v1/models/{version}/rollback */
static int rs_serve_rollback(void *opaque, const char *path,
                             rs_http_buf_t *b, const char **ctype) {
    static const char pre[] = "/v1/models/", suf[] = "/rollback";
    char version[RS_VERSION_MAX], e2[300];
    *ctype = "application/json";
    size_t pl = strlen(path);
    if (strncmp(path, pre, sizeof(pre) - 1) || pl <= sizeof(pre) + sizeof(suf) - 2 ||
        strcmp(path + pl - (sizeof(suf) - 1), suf)) {
        rs_http_buf_printf(b, "{\"error\":\"not found: POST "
                           "/v1/models/{version}/rollback\"}\n");
        return 404;
    }
    size_t vl = pl - (sizeof(pre) - 1) - (sizeof(suf) - 1);
    if (vl >= sizeof(version)) vl = sizeof(version) - 1;
    memcpy(version, path + sizeof(pre) - 1, vl);
    version[vl] = '\0';
    for (size_t i = 0; i < vl; i++)
        if (!(isalnum((unsigned char)version[i]) || version[i] == '-' ||
              version[i] == '_' || version[i] == '.')) {
            rs_http_buf_printf(b, "{\"error\":\"bad version name\"}\n");
            return 400;
        }
    rs_err_t err = rs_service_rollback(opaque, version, 30000, e2, sizeof(e2));
    if (err == RS_OK) {
        rs_http_buf_printf(b, "{\"rolled_back_to\":\"%s\"}\n", version);
        return 200;
    }
    for (char *p = e2; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
    rs_http_buf_printf(b, "{\"error\":\"%s\"}\n", e2);
    return err == RS_ERR_NOTFOUND ? 404
           : err == RS_ERR_STATE  ? 409
           : err == RS_ERR_TIMEOUT ? 503
           : err == RS_ERR_INVALID ? 400
                                   : 500;
}

static void rs_serve_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream serve [--config FILE] [--brokers HOST:PORT,...] "
        "[--redis URL] [--group ID]\n"
        "                        [--model FILE | --resume] [--set KEY=VALUE]...\n\n"
        "Consume the events and labels topics in one consumer group, compute\n"
        "window features, score every event, publish Score records to the\n"
        "scores topic (alerts for review/decline/alert) and to Redis, and learn\n"
        "online from labels.  Without --brokers (and no topics.brokers in the\n"
        "config) an embedded librdkafka mock cluster is started and its address\n"
        "is printed as `kafka bootstrap: HOST:PORT`.  SIGINT/SIGTERM stop it\n"
        "gracefully (flush, commit offsets, save the model if configured),\n"
        "also during start-up (it stops once started, exit 0).\n\n"
        "options:\n" RS_CLI_COMMON_HELP
        "  -m, --model FILE      start from this model file (service.model_path)\n"
        "      --resume          start from the model saved at the last shutdown\n"
        "                        (service.model_save_path) if that file exists,\n"
        "                        else from a new model (the systemd unit uses it)\n"
        "      --max-events N    stop after N scored events (service.max_events)\n"
        "      --exit-idle DUR   stop after DUR without input, e.g. 10s\n\n"
        "exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage/config error\n");
}

/* Start the embedded broker if no brokers are configured.  Returns the
 * cluster (or NULL when external) and sets *bootstrap. */
static int rs_serve_broker(rs_app_conf_t *app, rs_cluster_t **cluster,
                           const char **bootstrap) {
    char errstr[512];
    *cluster = NULL;
    if (app->ingest.brokers[0]) {
        *bootstrap = app->ingest.brokers;
        return RS_EXIT_OK;
    }
    const char *topics[] = {app->ingest.topic_events, app->ingest.topic_labels,
                            app->ingest.topic_scores, app->ingest.topic_alerts,
                            app->ingest.topic_dlq};
    *cluster = rs_cluster_new(1, topics, (int)RS_ARRAY_LEN(topics),
                              (int)app->ingest.partitions, errstr,
                              sizeof(errstr));
    if (!*cluster) {
        fprintf(stderr, "riskstream: embedded Kafka: %s\n", errstr);
        return RS_EXIT_RUNTIME;
    }
    *bootstrap = rs_cluster_bootstraps(*cluster);
    app->state_ephemeral = 1; /* the topics end with the process */
    printf("kafka bootstrap: %s\n", *bootstrap);
    fflush(stdout);
    /* Retention drops (~5 MB per partition) are logged at error level. */
    if (rs_cluster_watch(*cluster, 2000, errstr, sizeof(errstr)) != RS_OK)
        rs_warn("serve", "%s (retention drops will not be reported)", errstr);
    return RS_EXIT_OK;
}

/* --resume: service.model_path = service.model_save_path when that file
 * exists (a restart continues the model the last graceful stop saved).  A
 * model_path set explicitly is a usage error next to --resume. */
static int rs_serve_resume(rs_app_conf_t *app) {
    char errstr[512];
    rs_service_conf_t *sc = &app->service;
    if (sc->model_path[0])
        return rs_cli_usage_error("serve", "--resume and --model / "
                                  "service.model_path exclude each other");
    if (!sc->model_save_path[0])
        return rs_cli_usage_error("serve", "--resume needs "
                                  "service.model_save_path (where the model "
                                  "is saved at shutdown)");
    if (access(sc->model_save_path, F_OK) != 0) {
        rs_info("serve", "--resume: no saved model at %s yet: starting a new "
                "model", sc->model_save_path);
        return RS_EXIT_OK;
    }
    rs_info("serve", "--resume: starting from the model saved at %s",
            sc->model_save_path);
    if (rs_conf_set(app->conf, "service.model_path", sc->model_save_path,
                    errstr, sizeof(errstr)) != RS_OK)
        return rs_cli_usage_error("serve", "--resume: %s", errstr);
    return RS_EXIT_OK;
}

int rs_cmd_serve(int argc, char **argv) {
    static const struct option extra[] = {
        {"model", required_argument, NULL, 'm'},
        {"max-events", required_argument, NULL, 1000},
        {"exit-idle", required_argument, NULL, 1001},
        {"resume", no_argument, NULL, 1002},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *model = NULL, *max_events = NULL, *exit_idle = NULL;
    int c, resume = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "m:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("serve", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'h': rs_serve_help(stdout); return RS_EXIT_OK;
        case 'm': model = optarg; break;
        case 1000: max_events = optarg; break;
        case 1001: exit_idle = optarg; break;
        case 1002: resume = 1; break;
        default: rs_serve_help(stderr); return RS_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return rs_cli_usage_error("serve", "unexpected argument '%s'",
                                  argv[optind]);

    rs_app_conf_t app;
    rs_gen_conf_t gconf; /* accepted in the file so one YAML serves all */
    char errstr[512];
    int rc0 = rs_cli_app_init("serve", &app, &gconf);
    if (rc0 != RS_EXIT_OK) return rc0;
    int rc = rs_cli_load_conf("serve", &app, &co);
    if (rc == RS_EXIT_OK) {
        const struct { const char *flag, *key, *val; } fl[] = {
            {"--model", "service.model_path", model},
            {"--max-events", "service.max_events", max_events},
            {"--exit-idle", "service.exit_idle", exit_idle},
        };
        for (size_t i = 0; i < RS_ARRAY_LEN(fl) && rc == RS_EXIT_OK; i++)
            if (fl[i].val && rs_conf_set(app.conf, fl[i].key, fl[i].val,
                                         errstr, sizeof(errstr)) != RS_OK)
                rc = rs_cli_usage_error("serve", "%s: %s", fl[i].flag, errstr);
    }
    if (rc == RS_EXIT_OK && resume)
        rc = rs_serve_resume(&app);
    if (rc == RS_EXIT_OK) rs_app_conf_resolve(&app); /* as train and eval */
    if (rc != RS_EXIT_OK) {
        rs_app_conf_destroy(&app);
        return rc;
    }

    /* Configuration errors are exit 2, before anything is started. */
    if (!app.redis.url[0]) {
        rs_app_conf_destroy(&app);
        return rs_cli_usage_error("serve", "no Redis configured: pass --redis "
                                  "redis://HOST:PORT or unix:///PATH, or set "
                                  "redis.url (ops/run.sh starts a private "
                                  "redis-server)");
    }
    if (rs_redis_conf_check(&app.redis, errstr, sizeof(errstr)) != RS_OK) {
        rs_app_conf_destroy(&app);
        return rs_cli_usage_error("serve", "%s", errstr);
    }
    /* Stop requests from here on set rs_cli_stop: a SIGTERM during the
     * start-up (embedded broker, rs_service_new: checkpoint restore, Redis
     * connect, ...) is a graceful stop once rs_service_run starts, not the
     * default action (status 143). */
    rs_cli_signals();
    rs_cluster_t *cluster = NULL;
    const char *bootstrap = NULL;
    rc = rs_serve_broker(&app, &cluster, &bootstrap);
    if (rc != RS_EXIT_OK) {
        rs_app_conf_destroy(&app);
        return rc;
    }
    rs_err_t err = RS_OK;
    rs_http_t *http = NULL;
    rs_sink_label_t *labels = NULL;
    rs_service_t *svc = rs_service_new(&app, bootstrap, &err, errstr,
                                       sizeof(errstr));
    if (!svc) {
        fprintf(stderr, "riskstream serve: %s\n", errstr);
        rc = err == RS_ERR_CONFIG ? RS_EXIT_USAGE : RS_EXIT_RUNTIME;
        goto done;
    }
    /* The read-only HTTP API (audit lookups) on its own threads and Redis
     * connections, when http.enabled. */
    if (app.http.enabled) {
        http = rs_http_new(&app.http, &app.redis, errstr, sizeof(errstr));
        if (!http) {
            fprintf(stderr, "riskstream serve: http: %s\n", errstr);
            rc = RS_EXIT_RUNTIME;
            goto done;
        }
        rs_http_add_route(http, "/metrics", rs_serve_metrics, svc);
        rs_http_add_route(http, "/readyz", rs_serve_readyz, svc);
        rs_http_add_route(http, "/v1/models", rs_serve_models, svc);
        rs_http_add_post_route(http, "/v1/models", rs_serve_rollback, svc);
        /* the analysts' label action: the service's brokers, topic and
         * format, its own small producer */
        labels = rs_sink_label_new(&app.kafka, bootstrap,
                                   app.ingest.topic_labels,
                                   (rs_format_t)app.ingest.labels_format,
                                   errstr, sizeof(errstr));
        if (!labels) {
            fprintf(stderr, "riskstream serve: labels: %s\n", errstr);
            rc = RS_EXIT_RUNTIME;
            goto done;
        }
        rs_http_set_labeler(http, rs_cli_send_label, labels,
                            app.ingest.topic_labels);
        printf("http: http://%s:%d\n", app.http.bind, rs_http_port(http));
        fflush(stdout);
    }
    err = rs_service_run(svc, &rs_cli_stop, errstr, sizeof(errstr));
    rs_service_stats_t st;
    rs_service_stats(svc, &st);
    printf("serve: %llu events scored, %llu labels, %llu rejected in %.1f s; "
           "p50 %.2f ms p99 %.2f ms; model %s\n",
           (unsigned long long)st.scored, (unsigned long long)st.labels,
           (unsigned long long)st.rejected, st.elapsed_s,
           rs_hist_quantile(&st.e2e_us, 0.50) / 1000.0,
           rs_hist_quantile(&st.e2e_us, 0.99) / 1000.0, st.model_version);
    /* where the latency goes (README, Figures): up to the poll, poll to
     * handed to the producer, handed to delivered (Kafka + Redis) */
    printf("serve: latency p50/p99 ms: produced -> polled %.2f/%.2f, polled "
           "-> handed to the producer %.2f/%.2f, handed -> delivered %.2f/"
           "%.2f\n",
           rs_hist_quantile(&st.fetch_us, 0.50) / 1000.0,
           rs_hist_quantile(&st.fetch_us, 0.99) / 1000.0,
           rs_hist_quantile(&st.proc_us, 0.50) / 1000.0,
           rs_hist_quantile(&st.proc_us, 0.99) / 1000.0,
           rs_hist_quantile(&st.deliver_us, 0.50) / 1000.0,
           rs_hist_quantile(&st.deliver_us, 0.99) / 1000.0);
    /* the batch sizes behind them (dynamic batching follows the backlog) */
    printf("serve: batch messages p50/p99/p99.9: %lld/%lld/%lld in %llu "
           "batches; %llu checkpoints, longest pause %.2f ms\n",
           (long long)rs_hist_quantile(&st.batch_msgs, 0.50),
           (long long)rs_hist_quantile(&st.batch_msgs, 0.99),
           (long long)rs_hist_quantile(&st.batch_msgs, 0.999),
           (unsigned long long)st.batch_msgs.total,
           (unsigned long long)st.checkpoints,
           (double)st.checkpoint_step_max_us / 1000.0);
    if (err != RS_OK) {
        fprintf(stderr, "riskstream serve: %s\n", errstr);
        rc = RS_EXIT_RUNTIME;
    }
done:
    rs_http_destroy(http);
    rs_sink_label_destroy(labels);
    rs_service_destroy(svc);
    rs_cluster_destroy(cluster);
    rs_app_conf_destroy(&app);
    return rc;
}
