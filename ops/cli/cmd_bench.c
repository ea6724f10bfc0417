/* cmd_bench.c -- `riskstream bench`: end-to-end throughput and latency on
 * the embedded stack, at a fixed offered rate and at the maximum rate,
 * printed as a table with the machine's description. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void rs_bench_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream bench [--redis URL] [--rate N] [--events N] [--seed N]\n"
        "                        [--entities N] [--duration DUR] [--sensors]\n"
        "                        [--config FILE] [--set KEY=VALUE]...\n\n"
        "Three phases, each on a fresh embedded Kafka (librdkafka mock cluster)\n"
        "with the card generator feeding it from another thread:\n"
        "  fixed   the offered rate given by --rate (default 2000 events/s)\n"
        "  max     as fast as the service takes them (the feeder keeps at most\n"
        "          5000 events ahead so the mock's retention never drops input)\n"
        "  max, no explanations   the same with service.explain=false, to show\n"
        "          what explanations cost\n"
        "Each phase first sends 4000 warm-up events (the consumer's start-up:\n"
        "group join, offset lookup), waits until they are scored, resets the\n"
        "latency histograms, and then measures.\n"
        "The feature state is checkpointed every 5 s (incrementally, between\n"
        "batches); the table shows the checkpoints and their longest pause.\n"
        "Latency is measured from the event's Kafka produce timestamp to the\n"
        "moment its score is handed to the producer (ms resolution of Kafka\n"
        "timestamps), and processing latency from poll to score (us).\n"
        "ops/bench.sh starts a private Redis and runs this; the `command:`\n"
        "line under the table reproduces the run (each option's effective\n"
        "value, and the --config, --set and --group given).\n\n"
        "options:\n" RS_CLI_HELP_CONFIG RS_CLI_HELP_REDIS RS_CLI_HELP_GROUP
        RS_CLI_HELP_REST
        "      --rate N          offered rate of the fixed phase (default 2000)\n"
        "      --events N        events per phase (default 40000)\n"
        "      --seed N          generator seed (default 42)\n"
        "      --entities N      cards or machines (default 20000)\n"
        "      --duration DUR    simulated time span (default 30d)\n"
        "      --sensors         machines with sensors instead of cards\n");
}

/* One argument for a shell: as it is if it has only characters a shell
 * leaves alone, else in single quotes (a quote inside as '\''). */
static size_t rs_bench_arg(char *buf, size_t size, const char *a) {
    size_t o = 0;
    int plain = a[0] != '\0';
    for (const char *c = a; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_./:=,@%+-", *c))
            plain = 0;
    if (plain) return (size_t)snprintf(buf, size, " %s", a);
    o += (size_t)snprintf(buf, size, " '");
    for (const char *c = a; *c && o < size; c++)
        o += (size_t)snprintf(buf + o, size - o, *c == '\'' ? "'\\''" : "%c",
                              *c);
    if (o < size) o += (size_t)snprintf(buf + o, size - o, "'");
    return o;
}

/* The command that reproduces the run (bench's "command:" line): the
 * effective phase and generator settings -- flags, file and defaults
 * alike -- and the --config, --set and --group given (they shape the
 * service and the stream too); not --redis (ops/bench.sh starts a private
 * one) nor --log-level.  Into buf (size bytes, truncated). */
static void rs_bench_command(char *buf, size_t size,
                             const rs_harness_opts_t *ho,
                             const rs_gen_conf_t *g,
                             const rs_cli_common_t *co) {
    char dur[32];
    rs_duration_fmt(g->duration_ms, dur, sizeof(dur));
    size_t o = (size_t)snprintf(
        buf, size, "riskstream bench --rate %.15g --events %lld --seed %lld "
        "--entities %lld --duration %s%s", ho->rate,
        (long long)ho->max_events, (long long)g->seed, (long long)g->entities,
        dur, g->mode == RS_GEN_MODE_SENSORS ? " --sensors" : "");
#define RS_BENCH_ADD(flag, val)                                              \
    do {                                                                     \
        if (o < size) o += (size_t)snprintf(buf + o, size - o, " " flag);    \
        if (o < size) o += rs_bench_arg(buf + o, size - o, (val));           \
    } while (0)
    if (co->config_path) RS_BENCH_ADD("--config", co->config_path);
    for (int i = 0; i < co->nsets; i++) RS_BENCH_ADD("--set", co->sets[i]);
    if (co->group) RS_BENCH_ADD("--group", co->group);
#undef RS_BENCH_ADD
}

int rs_cmd_bench(int argc, char **argv) {
    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_init("bench", &app, &gconf), help = 0;
    if (rc != RS_EXIT_OK) return rc;
    gconf.entities = 20000;
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    rs_harness_opts_t ho = {.rate = 2000, .max_events = 40000,
                            .max_backlog = 5000, .warmup_events = 4000,
                            .label = "bench", .common = &co};
    rc = rs_cli_run_opts("bench", argc, argv, &app, &gconf, &ho, &help);
    if (help) rs_bench_help(stdout);
    if (rc != RS_EXIT_OK || help) {
        rs_app_conf_destroy(&app);
        return rc;
    }
    if (ho.rate <= 0) ho.rate = 2000;
    /* Checkpoint the feature state every 5 s during both phases, so the
     * table shows what checkpointing costs scoring. */
    char ckdir[] = "/tmp/riskstream-bench-ckpt.XXXXXX";
    int have_ck = !app.service.checkpoint_path[0] && mkdtemp(ckdir);
    if (have_ck) {
        snprintf(app.service.checkpoint_path,
                 sizeof(app.service.checkpoint_path), "%s/state.ckpt", ckdir);
        app.service.checkpoint_interval_ms = 5000;
    }
    rs_cli_signals();
    char machine[512];
    rs_harness_machine(machine, sizeof(machine));
    struct {
        const char *name;
        double rate;
        rs_harness_result_t res;
        int rc;
    } *ph = rs_calloc(3, sizeof(*ph));
    ph[0].name = "fixed";
    ph[0].rate = ho.rate;
    ph[1].name = "max";
    ph[1].rate = 0;
    ph[2].name = "max, no explanations";
    ph[2].rate = 0;
    int explain = app.service.explain;
    for (int i = 0; i < 3 && !rs_cli_stop; i++) {
        rs_harness_opts_t o = ho;
        o.rate = ph[i].rate;
        o.label = ph[i].name;
        app.service.explain = i == 2 ? 0 : explain;
        fprintf(stderr, "bench: phase %s (%s), %lld events...\n", ph[i].name,
                ph[i].rate > 0 ? "paced" : "unpaced",
                (long long)o.max_events);
        if (have_ck) unlink(app.service.checkpoint_path); /* fresh state */
        ph[i].rc = rs_harness_run(&app, &gconf, &o, &ph[i].res);
        if (ph[i].rc != RS_EXIT_OK) rc = ph[i].rc;
    }
    printf("\nriskstream bench: end-to-end, embedded Kafka (librdkafka mock "
           "cluster, %lld partitions) + Redis, batch_max %lld\n",
           (long long)app.ingest.partitions, (long long)app.ingest.batch_max);
    printf("machine: %s\n", machine);
    char cmdline[4096];
    rs_bench_command(cmdline, sizeof(cmdline), &ho, &gconf, &co);
    printf("command: %s (ops/bench.sh)\n\n", cmdline);
    printf("| phase | offered ev/s | achieved ev/s | events scored | p50 ms | "
           "p99 ms | p99.9 ms | max ms | proc p50 us | proc p99 us | "
           "checkpoints | ckpt max pause ms |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 3; i++) {
        const rs_service_stats_t *st = &ph[i].res.st;
        if (ph[i].rc != RS_EXIT_OK) {
            printf("| %s | failed (exit %d) |||||||||\n", ph[i].name,
                   ph[i].rc);
            continue;
        }
        char offered[32];
        if (ph[i].rate > 0) snprintf(offered, sizeof(offered), "%.0f",
                                     ph[i].rate);
        else snprintf(offered, sizeof(offered), "max");
        printf("| %s | %s | %.0f | %llu | %.2f | %.2f | %.2f | %.2f | %lld | "
               "%lld | %llu | %.2f |\n",
               ph[i].name, offered,
               ph[i].res.measured_s > 0
                   ? ph[i].res.measured_events / ph[i].res.measured_s
                   : 0,
               (unsigned long long)ph[i].res.measured_events,
               rs_hist_quantile(&st->e2e_us, 0.5) / 1000.0,
               rs_hist_quantile(&st->e2e_us, 0.99) / 1000.0,
               rs_hist_quantile(&st->e2e_us, 0.999) / 1000.0,
               (double)st->e2e_us.max / 1000.0,
               (long long)rs_hist_quantile(&st->proc_us, 0.5),
               (long long)rs_hist_quantile(&st->proc_us, 0.99),
               (unsigned long long)st->checkpoints,
               st->checkpoint_step_max_us / 1000.0);
    }
    printf("\nafter %lld warm-up events per phase; achieved ev/s = events "
           "scored / time from the first to the last score of the measured "
           "part; latency = Kafka produce timestamp (ms) -> score handed to "
           "the producer.\n", (long long)ho.warmup_events);
    if (have_ck) {
        unlink(app.service.checkpoint_path);
        rmdir(ckdir);
    }
    free(ph);
    rs_app_conf_destroy(&app);
    return rc;
}
