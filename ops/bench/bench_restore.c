/* bench_restore.c -- restore time of partition-local state (not a test:
 * prints a table).  N entity keys (default 1 M: the cards preset's entity
 * slots, each with E events) spread over P partitions (default 32) are
 *   1. saved to partition checkpoints and loaded into a fresh engine
 *      (rs_pstate_save / rs_pstate_load: a partition coming back to the
 *      instance that had it);
 *   2. written as changelog records (one 'F' record per entity and a
 *      marker per partition) to the embedded broker (librdkafka's mock
 *      cluster, in process, over TCP) and restored from it into a fresh
 *      engine (rs_changelog_restore: a partition arriving on another
 *      instance), partition after partition as the service does;
 *   3. the same records applied without Kafka (rs_pstate_apply): the CPU
 *      part of a changelog restore;
 *   4. standby copies (standby.h) of every partition on a fresh engine,
 *      caught up from the changelog's start (before any failover: not on
 *      its path), then T more records (--tail, default N / 100) and a
 *      marker per partition written and the failover done as the service
 *      does it: each copy taken and the changelog after its position read
 *      (the copy has read none of the tail: the worst case).
 * Only feature state: the sequence model's caches (~9 KB per entity at the
 * seq defaults) are not in it (an "lr" model has none).  The mock keeps
 * ~5 MB per partition: P must keep N / P records under that (the bench
 * says so if the broker dropped any).
 *
 * usage: bench_restore [--keys N] [--events-per-key E] [--partitions P]
 *                      [--tail T] [--dir DIR]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "scoring/changelog.h"
#include "scoring/pstate.h"
#include "scoring/standby.h"

static double now_s(void) { return (double)rs_clock_mono_ns() / 1e9; }

static rs_features_t *mkfeat(int64_t keys) {
    rs_features_conf_t c;
    char err[256];
    rs_features_conf_init(&c);
    c.max_keys = keys + 1024;
    c.max_counterparties = 4096;
    c.history = 16;
    c.label_index = 1024;
    c.label_maturity = 7 * 86400000LL;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) {
        fprintf(stderr, "features: %s\n", err);
        exit(1);
    }
    return f;
}

static rs_model_t *mkmodel(int dim, const rs_features_t *f) {
    rs_model_conf_t c;
    char err[256];
    const char *names[256];
    for (int i = 0; i < dim; i++) names[i] = rs_features_name(f, i);
    rs_model_conf_init(&c);
    c.kind = 1; /* lr: no entity caches */
    rs_model_t *m = rs_model_new(&c, dim, names, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "model: %s\n", err);
        exit(1);
    }
    return m;
}

static uint64_t entity_keys(const rs_features_t *f) {
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    return st.entity_keys;
}

int main(int argc, char **argv) {
    int64_t keys = 1000000, per = 2, tail = -1;
    int parts = 32;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--keys")) keys = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--events-per-key")) per = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--partitions")) parts = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--tail")) tail = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--keys N] [--events-per-key E] "
                    "[--partitions P] [--tail T] [--dir DIR]\n", argv[0]);
            return 2;
        }
    }
    char err[512], wd[600];
    snprintf(wd, sizeof(wd), "%s/bench_restore_XXXXXX", dir);
    if (!mkdtemp(wd)) {
        perror("mkdtemp");
        return 1;
    }
    /* the state: keys entities, `per` events each, partition = entity % P */
    rs_features_t *src = mkfeat(keys);
    int dim = rs_features_dim(src);
    float x[RS_FEATURES_MAX_DIM];
    double t0 = now_s();
    for (int64_t e = 0; e < per; e++)
        for (int64_t k = 0; k < keys; k++) {
            rs_event_t ev;
            memset(&ev, 0, sizeof(ev));
            snprintf(ev.id, sizeof(ev.id), "tx-%lld-%lld", (long long)k,
                     (long long)e);
            snprintf(ev.type, sizeof(ev.type), "card_tx");
            snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%lld",
                     (long long)k);
            snprintf(ev.counterparty_id, sizeof(ev.counterparty_id), "m-%lld",
                     (long long)(k % 1000));
            ev.event_time_ms = 1767225600000LL + e * 3600000LL + k % 3600000;
            ev.amount = 1.0 + (double)(k % 500);
            rs_features_set_partition(src, (int32_t)(k % parts));
            rs_features_process(src, &ev, x, NULL);
        }
    fprintf(stderr, "state: %llu entity keys (%lld events) in %.1f s\n",
            (unsigned long long)entity_keys(src), (long long)(keys * per),
            now_s() - t0);
    rs_model_t *m = mkmodel(dim, src);
    rs_pstate_t *ps = rs_pstate_new(wd, src, m, NULL, err, sizeof(err));
    if (!ps) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    /* 1. partition checkpoints */
    t0 = now_s();
    rs_pstate_pos_t pos = {1, -1, 0, -1};
    for (int p = 0; p < parts; p++)
        if (rs_pstate_save(ps, p, &pos, err, sizeof(err))) {
            fprintf(stderr, "save: %s\n", err);
            return 1;
        }
    double save_s = now_s() - t0;
    uint64_t file_bytes = 0;
    for (int p = 0; p < parts; p++) {
        char path[800];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/p%d/checkpoint", wd, p);
        if (!stat(path, &sb)) file_bytes += (uint64_t)sb.st_size;
    }
    rs_features_t *dst = mkfeat(keys);
    rs_model_t *m2 = mkmodel(dim, dst);
    rs_pstate_t *ps2 = rs_pstate_new(wd, dst, m2, NULL, err, sizeof(err));
    t0 = now_s();
    for (int p = 0; p < parts; p++) {
        uint64_t nk;
        if (rs_pstate_load(ps2, p, &pos, &nk, err, sizeof(err))) {
            fprintf(stderr, "load: %s\n", err);
            return 1;
        }
    }
    double load_s = now_s() - t0;
    uint64_t loaded = entity_keys(dst);

    /* 2. changelog through the embedded broker */
    const char *topic = "bench-state-changelog";
    char ebuf[512];
    rs_cluster_t *cl = rs_cluster_new(1, &topic, 1, parts, ebuf, sizeof(ebuf));
    if (!cl) {
        fprintf(stderr, "cluster: %s\n", ebuf);
        return 1;
    }
    rs_kv_t kv;
    rs_kv_init(&kv);
    rd_kafka_t *prod = rs_kafka_producer_new(&kv, rs_cluster_bootstraps(cl),
                                             ebuf, sizeof(ebuf));
    uint8_t key[RS_PSTATE_KEY_LEN], val[65536];
    uint64_t rec_bytes = 0, nrec = 0;
    t0 = now_s();
    for (int64_t k = 0; k < keys; k++) {
        char id[64];
        size_t len = 0;
        snprintf(id, sizeof(id), "card-%lld", (long long)k);
        if (rs_features_entity_write(src, id, val, sizeof(val), &len)) continue;
        int32_t p = (int32_t)(k % parts);
        rs_pstate_key_encode(key, 'F', p, rs_hash_str(id));
        while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(p),
                                 RD_KAFKA_V_KEY(key, sizeof(key)),
                                 RD_KAFKA_V_VALUE(val, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        rec_bytes += sizeof(key) + len;
        nrec++;
    }
    uint8_t mk[RS_PSTATE_MARK_LEN];
    rs_pstate_mark_encode(mk, &pos);
    for (int p = 0; p < parts; p++) {
        rs_pstate_key_encode(key, 'M', p, 0);
        rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                          RD_KAFKA_V_KEY(key, sizeof(key)),
                          RD_KAFKA_V_VALUE(mk, sizeof(mk)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    }
    rd_kafka_flush(prod, 60000);
    double produce_s = now_s() - t0;
    rd_kafka_destroy(prod);
    int64_t dropped = -1;
    if (rs_cluster_watch(cl, 1000, ebuf, sizeof(ebuf)) == RS_OK)
        dropped = rs_cluster_dropped(cl, topic, 1);
    rs_features_t *dst2 = mkfeat(keys);
    rs_model_t *m3 = mkmodel(dim, dst2);
    rs_pstate_t *ps3 = rs_pstate_new(wd, dst2, m3, NULL, err, sizeof(err));
    rs_changelog_t *clg = rs_changelog_new(&kv, rs_cluster_bootstraps(cl),
                                           topic, dst2, m3, NULL, ps3, 512,
                                           err, sizeof(err));
    if (!clg) {
        fprintf(stderr, "changelog: %s\n", err);
        return 1;
    }
    t0 = now_s();
    uint64_t applied = 0;
    for (int p = 0; p < parts; p++) {
        uint64_t n = 0;
        rs_pstate_pos_t cpos;
        rs_err_t e = rs_changelog_restore(clg, p, 0, &cpos, &n, err,
                                          sizeof(err));
        if (e) {
            fprintf(stderr, "restore of partition %d: %s\n", p, err);
            return 1;
        }
        applied += n;
    }
    double cl_s = now_s() - t0;
    uint64_t restored = entity_keys(dst2);

    /* 3. the same records applied without Kafka */
    rs_features_t *dst3 = mkfeat(keys);
    rs_model_t *m4 = mkmodel(dim, dst3);
    rs_pstate_t *ps4 = rs_pstate_new(wd, dst3, m4, NULL, err, sizeof(err));
    double apply_s = 0;
    for (int64_t k = 0; k < keys; k++) {
        char id[64];
        size_t len = 0;
        snprintf(id, sizeof(id), "card-%lld", (long long)k);
        if (rs_features_entity_write(src, id, val, sizeof(val), &len)) continue;
        int32_t p = (int32_t)(k % parts);
        rs_pstate_key_encode(key, 'F', p, rs_hash_str(id));
        int is_mark;
        rs_pstate_pos_t unused;
        double a = now_s();
        rs_pstate_apply(ps4, p, key, sizeof(key), val, len, &unused, &is_mark,
                        err, sizeof(err));
        apply_s += now_s() - a;
    }
    uint64_t applied_keys = entity_keys(dst3);

    /* 4. standby copies: caught up, then a failover with a tail */
    if (tail < 0) tail = keys / 100;
    rs_features_t *dst4 = mkfeat(keys);
    rs_model_t *m5 = mkmodel(dim, dst4);
    rs_pstate_t *ps5 = rs_pstate_new(wd, dst4, m5, NULL, err, sizeof(err));
    rs_standby_t *sb = rs_standby_new(&kv, rs_cluster_bootstraps(cl), topic,
                                      ps5, err, sizeof(err));
    if (!sb) {
        fprintf(stderr, "standby: %s\n", err);
        return 1;
    }
    int64_t *hw = calloc((size_t)parts, sizeof(*hw));
    for (int p = 0; p < parts; p++) {
        hw[p] = rs_changelog_hwm(clg, p);
        rs_standby_add(sb, p, NULL);
    }
    t0 = now_s();
    for (int done = 0; !done;) {
        rs_standby_poll(sb, 100);
        done = 1;
        for (int p = 0; p < parts && done; p++)
            done = rs_standby_position(sb, p) >= hw[p];
        if (!done && now_s() - t0 > 900) {
            fprintf(stderr, "standby: not caught up in 900 s\n");
            return 1;
        }
    }
    double catch_s = now_s() - t0;
    uint64_t caught = entity_keys(dst4);
    prod = rs_kafka_producer_new(&kv, rs_cluster_bootstraps(cl), ebuf,
                                 sizeof(ebuf));
    for (int64_t k = 0; k < tail && k < keys; k++) {
        char id[64];
        size_t len = 0;
        snprintf(id, sizeof(id), "card-%lld", (long long)k);
        if (rs_features_entity_write(src, id, val, sizeof(val), &len)) continue;
        int32_t p = (int32_t)(k % parts);
        rs_pstate_key_encode(key, 'F', p, rs_hash_str(id));
        while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(p),
                                 RD_KAFKA_V_KEY(key, sizeof(key)),
                                 RD_KAFKA_V_VALUE(val, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
    }
    for (int p = 0; p < parts; p++) {
        rs_pstate_key_encode(key, 'M', p, 0);
        rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                          RD_KAFKA_V_KEY(key, sizeof(key)),
                          RD_KAFKA_V_VALUE(mk, sizeof(mk)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    }
    rd_kafka_flush(prod, 60000);
    rd_kafka_destroy(prod);
    rs_changelog_t *clg5 = rs_changelog_new(&kv, rs_cluster_bootstraps(cl),
                                            topic, dst4, m5, NULL, ps5, 512,
                                            err, sizeof(err));
    t0 = now_s();
    uint64_t tail_rec = 0;
    for (int p = 0; p < parts; p++) {
        rs_pstate_pos_t sp, cpos;
        uint64_t n = 0;
        if (!rs_standby_take(sb, p, &sp)) {
            fprintf(stderr, "standby of partition %d: no marker\n", p);
            return 1;
        }
        rs_err_t e = rs_changelog_restore(clg5, p, sp.changelog, &cpos, &n,
                                          err, sizeof(err));
        if (e) {
            fprintf(stderr, "tail of partition %d: %s\n", p, err);
            return 1;
        }
        tail_rec += n;
    }
    double fail_s = now_s() - t0;
    uint64_t failed_over = entity_keys(dst4);

    printf("bench_restore: %lld entity keys (cards preset, history 16, %lld "
           "events each), %d partitions\n", (long long)keys, (long long)per,
           parts);
    printf("command: build/ops/bench/bench_restore --keys %lld "
           "--events-per-key %lld --partitions %d --tail %lld\n\n",
           (long long)keys, (long long)per, parts, (long long)tail);
    printf("| restore of %lld keys | seconds | keys/s | keys restored | "
           "bytes |\n|---|---:|---:|---:|---:|\n", (long long)keys);
    printf("| partition checkpoints: save (write + fsync) | %.2f | %.0f | - | "
           "%llu on disk |\n", save_s, (double)keys / save_s,
           (unsigned long long)file_bytes);
    printf("| partition checkpoints: load | %.2f | %.0f | %llu | - |\n",
           load_s, (double)loaded / load_s, (unsigned long long)loaded);
    printf("| changelog: produce %llu records (not a restore) | %.2f | %.0f "
           "| - | %llu |\n", (unsigned long long)nrec, produce_s,
           (double)nrec / produce_s, (unsigned long long)rec_bytes);
    printf("| changelog: restore through the embedded broker | %.2f | %.0f | "
           "%llu (%llu records) | - |\n", cl_s, (double)restored / cl_s,
           (unsigned long long)restored, (unsigned long long)applied);
    printf("| changelog: the records applied without Kafka (CPU) | %.2f | "
           "%.0f | %llu | - |\n", apply_s, (double)applied_keys / apply_s,
           (unsigned long long)applied_keys);
    printf("| standby: copies caught up from the changelog's start (before "
           "a failover, not on its path) | %.2f | %.0f | %llu | - |\n",
           catch_s, (double)caught / catch_s, (unsigned long long)caught);
    printf("| standby: failover = every copy taken + its changelog tail "
           "(%llu records, none read by the copy) | %.3f | - | %llu | - |\n",
           (unsigned long long)tail_rec, fail_s,
           (unsigned long long)failed_over);
    if (dropped > 0)
        printf("\nWARNING: the embedded broker dropped %lld changelog "
               "records (retention ~5 MB per partition): use more "
               "--partitions\n", (long long)dropped);
    rs_changelog_destroy(clg5);
    rs_standby_destroy(sb);
    free(hw);
    rs_changelog_destroy(clg);
    rs_cluster_destroy(cl);
    rs_kv_free(&kv);
    rs_pstate_destroy(ps);
    rs_pstate_destroy(ps2);
    rs_pstate_destroy(ps3);
    rs_pstate_destroy(ps4);
    rs_pstate_destroy(ps5);
    rs_features_destroy(dst4);
    rs_model_destroy(m5);
    rs_features_destroy(src);
    rs_features_destroy(dst);
    rs_features_destroy(dst2);
    rs_features_destroy(dst3);
    rs_model_destroy(m);
    rs_model_destroy(m2);
    rs_model_destroy(m3);
    rs_model_destroy(m4);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", wd);
    return system(cmd) == 0 ? 0 : 1;
}
