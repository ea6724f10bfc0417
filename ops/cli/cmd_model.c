/* cmd_model.c -- `riskstream model`: the model versions of a running
 * service (over its HTTP API) or of a model store directory.
 *
 *   riskstream model list [--url URL | --store DIR] [--json]
 *   riskstream model rollback VERSION [--url URL]
 *
 * The running service answers GET /v1/models and POST
 * /v1/models/{version}/rollback (serve with http.enabled).  HTTP goes
 * through libcurl; the bearer token comes from the environment variable
 * named by http.token_env (never from the command line, so it does not
 * show in `ps`).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "ops/gen/gen.h"

static void rs_model_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream model list [--url URL | --store DIR] [--json]\n"
        "       riskstream model rollback VERSION [--url URL]\n\n"
        "List the model versions of a running service (newest first, the one\n"
        "scoring marked with *), or of a model store directory; or make the\n"
        "running service go back to a stored version: its trainer loads the\n"
        "version from the store (model.store_dir), the scorer uses it from its\n"
        "next batch, and online learning continues from it (the next version\n"
        "gets a new number).  The service must run with http.enabled: true.\n\n"
        "options:\n"
        "  -u, --url URL         the service's HTTP API (default from the config:\n"
        "                        http://<http.bind>:<http.port>)\n"
        "      --store DIR       list a model store directory instead (no service)\n"
        "      --json            print the service's JSON answer as it is\n"
        "  -c, --config FILE     YAML configuration (http: and model: sections)\n"
        "  -s, --set KEY=VALUE   override one config key\n"
        "  -l, --log-level LVL   debug|info|warn|error (default warn)\n"
        "  -h, --help            this help\n\n"
        "The bearer token, if the API needs one, is read from the environment\n"
        "variable named by http.token_env.\n\n"
        "exit codes: 0 ok; 1 the service or store failed (unreachable, version\n"
        "not found, rollback refused); 2 usage or configuration error\n");
}

typedef struct rs_model_resp_s {
    char *p;
    size_t len;
} rs_model_resp_t;

static size_t rs_model_curl_write(char *data, size_t sz, size_t nm,
                                  void *opaque) {
    rs_model_resp_t *r = opaque;
    size_t n = sz * nm;
    if (r->len + n > (16u << 20)) return 0; /* refuse absurd answers */
    r->p = rs_realloc(r->p, r->len + n + 1);
    memcpy(r->p + r->len, data, n);
    r->len += n;
    r->p[r->len] = '\0';
    return n;
}

/* One request; *status gets the HTTP status (0 if none).  Returns the
 * body (malloc'd, NUL-terminated) or NULL with errstr. */
static char *rs_model_http(const char *url, int post, const char *token,
                           long *status, char *errstr, size_t errstr_size) {
    rs_model_resp_t r = {NULL, 0};
    *status = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(errstr, errstr_size, "cannot initialise libcurl");
        return NULL;
    }
    char auth[512];
    struct curl_slist *hdr = NULL;
    if (token && token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rs_model_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (hdr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(errstr, errstr_size, "%.300s: %s", url, curl_easy_strerror(cc));
        free(r.p);
        r.p = NULL;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (!r.p) r.p = rs_calloc(1, 1);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (token) memset(auth, 0, sizeof(auth));
    return r.p;
}

static void rs_model_time(int64_t ms, char *out, size_t size) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void rs_model_row(const char *mark, const char *version,
                         uint64_t number, int64_t saved_ms, uint64_t updates,
                         uint64_t bytes) {
    char when[32];
    rs_model_time(saved_ms, when, sizeof(when));
    printf("%-1s %-28s %8llu  %s  %10llu  %8.2f\n", mark, version,
           (unsigned long long)number, when, (unsigned long long)updates,
           (double)bytes / (1024.0 * 1024.0));
}

static void rs_model_header(void) {
    printf("  %-28s %8s  %-19s  %10s  %8s\n", "version", "number",
           "saved (UTC)", "updates", "MiB");
}

/* `model list --store DIR` */
static int rs_model_list_store(const char *dir) {
    char errstr[512];
    rs_model_store_t *st = rs_model_store_open(dir, 1 << 30, errstr,
                                               sizeof(errstr));
    if (!st) {
        fprintf(stderr, "riskstream model: %s\n", errstr);
        return RS_EXIT_RUNTIME;
    }
    rs_model_store_entry_t *e = rs_calloc(4096, sizeof(*e));
    int n = rs_model_store_list(st, e, 4096);
    rs_model_header();
    for (int i = 0; i < n; i++)
        rs_model_row("", e[i].version, e[i].number, e[i].saved_at_ms,
                     e[i].updates, e[i].bytes);
    printf("%d version(s) in %s\n", n, dir);
    free(e);
    rs_model_store_close(st);
    return RS_EXIT_OK;
}

/* Print the service's answer to GET /v1/models as a table. */
static int rs_model_print_list(const char *body) {
    json_error_t je;
    json_t *root = json_loads(body, 0, &je);
    if (!root || !json_is_object(root)) {
        fprintf(stderr, "riskstream model: the service's answer is not JSON "
                "(%s)\n", je.text);
        json_decref(root);
        return RS_EXIT_RUNTIME;
    }
    const char *serving = json_string_value(json_object_get(root, "serving"));
    json_t *tr = json_object_get(root, "trainer");
    json_t *vs = json_object_get(root, "versions");
    printf("serving: %s   trainer: %s, %lld updates, %lld versions published, "
           "%lld rollbacks\n", serving ? serving : "?",
           json_string_value(json_object_get(tr, "version"))
               ? json_string_value(json_object_get(tr, "version"))
               : "?",
           (long long)json_integer_value(json_object_get(tr, "updates")),
           (long long)json_integer_value(json_object_get(tr, "published")),
           (long long)json_integer_value(json_object_get(tr, "rollbacks")));
    size_t i, n = json_array_size(vs);
    if (n == 0) {
        printf("no stored versions (the service runs without "
               "model.store_dir, so it cannot roll back)\n");
    } else {
        rs_model_header();
        json_t *v;
        json_array_foreach(vs, i, v) {
            const char *name = json_string_value(json_object_get(v, "version"));
            if (!name) continue;
            rs_model_row(serving && !strcmp(serving, name) ? "*" : "", name,
                         (uint64_t)json_integer_value(json_object_get(v, "number")),
                         json_integer_value(json_object_get(v, "saved_at_ms")),
                         (uint64_t)json_integer_value(json_object_get(v, "updates")),
                         (uint64_t)json_integer_value(json_object_get(v, "bytes")));
        }
    }
    json_decref(root);
    return RS_EXIT_OK;
}

int rs_cmd_model(int argc, char **argv) {
    static const struct option extra[] = {
        {"url", required_argument, NULL, 'u'},
        {"store", required_argument, NULL, 3001},
        {"json", no_argument, NULL, 3002},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *url = NULL, *store = NULL;
    int json = 0, c;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        rs_model_help(stdout);
        return RS_EXIT_OK;
    }
    if (argc < 2)
        return rs_cli_usage_error("model", "expected `list` or `rollback "
                                  "VERSION` (see riskstream model --help)");
    const char *sub = argv[1];
    int is_list = !strcmp(sub, "list"), is_rb = !strcmp(sub, "rollback");
    if (!is_list && !is_rb)
        return rs_cli_usage_error("model", "unknown subcommand '%s' (list, "
                                  "rollback)", sub);
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "u:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("model", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'h': rs_model_help(stdout); return RS_EXIT_OK;
        case 'u': url = optarg; break;
        case 3001: store = optarg; break;
        case 3002: json = 1; break;
        default: return RS_EXIT_USAGE; /* getopt named the flag */
        }
    }
    if (rs_cli_common_unused("model", &co, RS_CLI_NO_BROKERS |
                                               RS_CLI_NO_REDIS |
                                               RS_CLI_NO_GROUP))
        return RS_EXIT_USAGE;
    const char *version = NULL;
    if (is_rb) {
        if (optind >= argc)
            return rs_cli_usage_error("model", "rollback needs a VERSION "
                                      "(see riskstream model list)");
        version = argv[optind++];
        for (const char *p = version; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' ||
                  *p == '.'))
                return rs_cli_usage_error("model", "bad version name '%s'",
                                          version);
        if (store)
            return rs_cli_usage_error("model", "rollback acts on a running "
                                      "service: use --url, not --store");
    }
    if (optind < argc)
        return rs_cli_usage_error("model", "unexpected argument '%s'",
                                  argv[optind]);
    if (url && store)
        return rs_cli_usage_error("model", "give --url or --store, not both");

    rs_app_conf_t app;
    rs_gen_conf_t gconf; /* accepted in the file so one YAML serves all */
    int rc = rs_cli_app_load("model", &app, &gconf, &co);
    if (rc != RS_EXIT_OK) return rc;
    if (is_list && store) {
        rc = rs_model_list_store(store);
        rs_app_conf_destroy(&app);
        return rc;
    }
    char base[600], full[800], errstr[512];
    if (url)
        rs_strlcpy(base, url, sizeof(base));
    else
        snprintf(base, sizeof(base), "http://%s%s%s:%lld",
                 strchr(app.http.bind, ':') ? "[" : "", app.http.bind,
                 strchr(app.http.bind, ':') ? "]" : "",
                 (long long)app.http.port);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') base[--bl] = '\0';
    const char *token = NULL;
    if (app.http.token_env[0]) {
        token = getenv(app.http.token_env);
        if (!token || !token[0]) {
            rc = rs_cli_usage_error("model", "http.token_env names %s, "
                                    "which is not set",
                                    app.http.token_env);
            rs_app_conf_destroy(&app);
            return rc;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long status = 0;
    if (is_list)
        snprintf(full, sizeof(full), "%s/v1/models", base);
    else
        snprintf(full, sizeof(full), "%s/v1/models/%s/rollback", base,
                 version);
    char *body = rs_model_http(full, is_rb, token, &status, errstr,
                               sizeof(errstr));
    if (!body) {
        fprintf(stderr, "riskstream model: %s (is `riskstream serve` "
                "running with http.enabled?)\n", errstr);
        rc = RS_EXIT_RUNTIME;
    } else if (status != 200) {
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "riskstream model: %s: HTTP %ld: %s\n", full, status,
                e ? e : body);
        json_decref(j);
        rc = RS_EXIT_RUNTIME;
    } else if (json) {
        fputs(body, stdout);
        rc = RS_EXIT_OK;
    } else if (is_list) {
        rc = rs_model_print_list(body);
    } else {
        printf("rolled back to %s: the service scores with it from its next "
               "batch\n", version);
        rc = RS_EXIT_OK;
    }
    free(body);
    curl_global_cleanup();
    rs_app_conf_destroy(&app);
    return rc;
}
