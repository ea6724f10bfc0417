/* harness.c -- embedded stack for demo and bench (see harness.h). */
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

typedef struct rs_feeder_s {
    rs_gen_t *gen;
    rd_kafka_t *prod;
    const char *t_events, *t_labels;
    rs_format_t ev_fmt, lb_fmt;
    rs_harness_opts_t opts;
    int64_t t0_ms, span_ms;            /* generator's simulated time span */
    _Atomic uint64_t produced_events, produced_labels, frauds;
    _Atomic int64_t sim_ms;            /* event time of the last record  */
    _Atomic uint64_t scored;           /* mirror of the service's count  */
    _Atomic int done, stop;
    _Atomic int ready;                 /* consumer has its partitions    */
    _Atomic int warm;                  /* warm-up scored, stats reset    */
    _Atomic uint64_t errors;
    double feed_s;
    /* opts.maintenance: truth of every reading by its id number (feeder
     * thread until done) */
    uint8_t *truth;                    /* [ntruth] 1: within the window  */
    size_t ntruth;
    uint64_t max_no;
} rs_feeder_t;

static void rs_sleep_us(int64_t us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static int rs_feeder_produce(rs_feeder_t *f, const char *topic,
                             const char *key, const void *buf, size_t len) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            f->prod, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)buf, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!e) return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            atomic_fetch_add(&f->errors, 1);
            rs_error("feeder", "produce to %s: %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(f->prod, 10);
        if (atomic_load(&f->stop)) return -1;
    }
}

static void *rs_feeder_main(void *arg) {
    rs_feeder_t *f = arg;
    static _Thread_local uint8_t buf[RS_MSG_MAX];
    rs_gen_rec_t rec;
    /* Produce only once the service's consumer owns its partitions, so the
     * group join is not counted as event latency. */
    while (!atomic_load(&f->ready) && !atomic_load(&f->stop))
        rs_sleep_us(1000);

    int64_t start = rs_clock_mono_us();
    uint64_t nev = 0, pace0 = 0;
    while (!atomic_load(&f->stop) && rs_gen_next(f->gen, &rec) == 1) {
        int len;
        if (rec.kind == RS_GEN_EVENT) {
            if (f->opts.max_events > 0 &&
                (int64_t)nev >= f->opts.max_events + f->opts.warmup_events)
                break;
            if (f->opts.warmup_events > 0 &&
                (int64_t)nev == f->opts.warmup_events) {
                /* Warm-up done: wait until it is scored and the latency
                 * histograms are reset, then pace from here. */
                while (!atomic_load(&f->warm) && !atomic_load(&f->stop))
                    rs_sleep_us(1000);
                start = rs_clock_mono_us();
                pace0 = nev;
            }
            if (f->opts.rate > 0) { /* pace on the wall clock */
                int64_t due = start + (int64_t)((double)(nev - pace0) * 1e6 /
                                                f->opts.rate);
                int64_t now = rs_clock_mono_us();
                if (due > now) rs_sleep_us(due - now);
            }
            /* Bounded backlog at any rate (a service slower than the
             * offered rate would otherwise let the broker's retention
             * drop unread input). */
            while (!atomic_load(&f->stop) &&
                   nev - atomic_load(&f->scored) >
                       (uint64_t)f->opts.max_backlog)
                rs_sleep_us(500);
            len = rs_event_encode(f->ev_fmt, &rec.ev, buf, sizeof(buf));
            if (len < 0 || rs_feeder_produce(f, f->t_events,
                                             rec.ev.entity_id, buf,
                                             (size_t)len))
                break;
            nev++;
            atomic_store(&f->produced_events, nev);
            if (rec.is_fraud) atomic_fetch_add(&f->frauds, 1);
            if (f->opts.maintenance && !strncmp(rec.ev.id, "r-", 2)) {
                uint64_t no = strtoull(rec.ev.id + 2, NULL, 10);
                if (no >= f->ntruth) {
                    size_t n = f->ntruth ? f->ntruth : 65536;
                    while (n <= no) n *= 2;
                    f->truth = rs_realloc(f->truth, n);
                    memset(f->truth + f->ntruth, 2, n - f->ntruth);
                    f->ntruth = n;
                }
                f->truth[no] = rec.is_fraud ? 1 : 0;
                if (no > f->max_no) f->max_no = no;
            }
            atomic_store(&f->sim_ms, rec.ev.event_time_ms);
        } else {
            len = rs_label_encode(f->lb_fmt, &rec.lb, buf, sizeof(buf));
            if (len < 0 || rs_feeder_produce(f, f->t_labels,
                                             rec.lb.entity_id, buf,
                                             (size_t)len))
                break;
            atomic_fetch_add(&f->produced_labels, 1);
        }
        rd_kafka_poll(f->prod, 0);
    }
    rd_kafka_flush(f->prod, 30000);
    f->feed_s = (double)(rs_clock_mono_us() - start) / 1e6;
    atomic_store(&f->done, 1);
    return NULL;
}

typedef struct rs_harness_s {
    rs_feeder_t *f;
    rs_service_t *svc;
    uint64_t scored0;     /* scored when the warm-up ended              */
    double active0;
    const rs_harness_opts_t *opts;
    volatile sig_atomic_t stop;
    int64_t last_print_us;
    uint64_t last_count;  /* scored + rejected + labels, for the stall check */
    int64_t last_move_us;
    int stalled;          /* stopped waiting for input that never came     */
} rs_harness_t;

void rs_cli_fmt_count(uint64_t v, char *buf, size_t size) {
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    size_t j = 0;
    for (int i = 0; i < n && j + 2 < size; i++) {
        if (i && (n - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = '\0';
}

static void rs_harness_progress(void *opaque, const rs_service_stats_t *st) {
    rs_harness_t *h = opaque;
    rs_feeder_t *f = h->f;
    atomic_store(&f->scored, st->scored + st->rejected);
    if (st->assigned > 0) atomic_store(&f->ready, 1);
    if (!atomic_load(&f->warm) && h->opts->warmup_events > 0 &&
        st->scored + st->rejected >= (uint64_t)h->opts->warmup_events) {
        rs_service_reset_latency(h->svc);
        h->scored0 = st->scored;
        h->active0 = st->active_s;
        atomic_store(&f->warm, 1);
    }
    if (rs_cli_stop) h->stop = 1;
    int done = atomic_load(&f->done);
    if (done && st->scored + st->rejected >=
                    atomic_load(&f->produced_events) &&
        st->labels >= atomic_load(&f->produced_labels))
        h->stop = 1;
    int64_t now = rs_clock_mono_us();
    /* All produced but some never arrives (dropped by retention before it
     * was read): stop after 10 s without progress, and say so after. */
    uint64_t count = st->scored + st->rejected + st->labels;
    if (count != h->last_count || !h->last_move_us) {
        h->last_count = count;
        h->last_move_us = now;
    } else if (done && !h->stop && now - h->last_move_us > 10000000) {
        h->stalled = 1;
        h->stop = 1;
    }
    if (!h->opts->progress || (now - h->last_print_us < 1000000 && !h->stop))
        return;
    double el = now - h->last_print_us < 0 ? 0 : st->elapsed_s;
    h->last_print_us = now;
    double frac = f->span_ms > 0 ? (double)(atomic_load(&f->sim_ms) - f->t0_ms) /
                                       (double)f->span_ms
                                 : 0;
    if (frac < 0) frac = 0;
    if (frac > 1 || done) frac = 1;
    double eta = frac > 0.01 ? el * (1 - frac) / frac : 0;
    char ev[32];
    rs_cli_fmt_count(st->scored, ev, sizeof(ev));
    double auc = rs_auc_roc(&st->auc);
    int tty = isatty(STDOUT_FILENO);
    printf("%s[%s %3.0f%% eta %3.0fs] %s events | %6.0f ev/s | p50 %5.2f ms "
           "p99 %6.2f ms | caught %llu/%llu | AUC %s%.3f | %s%s",
           tty ? "\r\033[K" : "", h->opts->label, frac * 100, eta, ev,
           st->active_s > 0 ? (double)st->scored / st->active_s : 0,
           rs_hist_quantile(&st->e2e_us, 0.5) / 1000.0,
           rs_hist_quantile(&st->e2e_us, 0.99) / 1000.0,
           (unsigned long long)st->caught, (unsigned long long)st->positives,
           auc != auc ? "n/a " : "", auc != auc ? 0.0 : auc,
           st->model_version, tty ? "" : "\n");
    fflush(stdout);
}

/* One reading's record, as read back. */
typedef struct rs_hm_rec_s {
    int64_t t;
    uint64_t ent;
    float score;   /* the model's own (the record's `score`)             */
    float pscore;  /* what the policy decided on: `alert_score` if the
                    * record carries it (cold-start blend), else `score` */
    uint8_t truth, fail, alert;
} rs_hm_rec_t;

static int rs_hm_cmp(const void *a, const void *b) {
    const rs_hm_rec_t *x = a, *y = b;
    if (x->ent != y->ent) return x->ent < y->ent ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}
static int rs_hm_cmp_t(const void *a, const void *b) {
    const rs_hm_rec_t *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->ent < y->ent ? -1 : x->ent > y->ent;
}

/* The maintenance figures of a sensors run: every reading's record read
 * back from Redis (the scores topic of the embedded broker keeps only
 * ~5 MB per partition), its truth from the generator; a failure is the
 * last reading of each run of readings within the failure window (as
 * `eval --maintenance` finds it in the generator's labels); the service's
 * alert decisions, and the open episodes of the same policy replayed over
 * the score the service's policy decided on (the record's `alert_score`
 * where it carries one, else `score`; the service's open episodes are not
 * exposed per reading).  The replay's decisions are checked against the
 * records' (res->maint_mismatch, printed even when 0).  The "serve" row's
 * AUC/AP/above% are of that policy score, as eval measures them; the
 * model's own `score` gets its AUC/AP apart (res->maint_model_auc/ap). */
static void rs_harness_maint(rs_service_t *svc, const rs_app_conf_t *app,
                             rs_feeder_t *f, rs_harness_result_t *res) {
    if (!f->ntruth) return;
    size_t n = 0, cap = (size_t)f->max_no + 1;
    rs_hm_rec_t *r = rs_calloc(cap, sizeof(*r));
    char *json = rs_malloc(RS_ENCODE_MAX), id[64], e2[256];
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    for (uint64_t no = 0; no <= f->max_no; no++) {
        if (f->truth[no] > 1) continue;
        snprintf(id, sizeof(id), "r-%llu", (unsigned long long)no);
        if (rs_service_lookup(svc, id, json, RS_ENCODE_MAX, e2,
                              sizeof(e2)) != RS_OK ||
            rs_score_from_json(json, strlen(json), sc, e2, sizeof(e2)) !=
                RS_OK) {
            res->maint_missing++;
            continue;
        }
        r[n].t = sc->event_time_ms;
        r[n].ent = rs_hash_str(sc->entity_id);
        r[n].score = (float)sc->score;
        /* alert_score is a float32 value, written only when it differs */
        r[n].pscore = sc->alert_score != 0 ? (float)sc->alert_score
                                           : r[n].score;
        res->maint_alert_scores += (uint64_t)(sc->alert_score != 0);
        r[n].truth = f->truth[no];
        r[n].alert = sc->decision == RS_DECISION_ALERT;
        n++;
    }
    free(json);
    free(sc);
    /* failures: the last truth of each run, per machine */
    qsort(r, n, sizeof(*r), rs_hm_cmp);
    for (size_t i = 0; i < n; i++)
        r[i].fail = r[i].truth &&
                    (i + 1 == n || r[i + 1].ent != r[i].ent || !r[i + 1].truth);
    qsort(r, n, sizeof(*r), rs_hm_cmp_t);
    const char *cols[1] = {"serve"};
    rs_mev_t *mev = rs_mev_new(1, cols, app->maint.horizon,
                               app->maint.alert_threshold);
    rs_alertpol_t *pol = rs_alertpol_new(&app->maint, e2, sizeof(e2));
    /* as eval: the first 1.25 x (horizon + report delay) of event time are
     * the models' warm-up, not measured (the policy runs through them) */
    const int64_t warm = (int64_t)(1.25 * (double)(app->maint.horizon +
                                                   app->model.label_delay));
    const int64_t t_meas = n ? r[0].t + warm : 0;
    /* the model's own score over the same measured readings */
    double *msc = rs_malloc((n ? n : 1) * sizeof(*msc));
    int *mlab = rs_malloc((n ? n : 1) * sizeof(*mlab));
    size_t nm = 0;
    if (mev && pol) {
        for (size_t i = 0; i < n; i++) {
            rs_alertpol_decision_t d =
                rs_alertpol_step(pol, r[i].ent, r[i].t, r[i].pscore);
            res->maint_replayed++;
            res->maint_mismatch += (uint64_t)((d != RS_ALERTPOL_NONE) !=
                                              r[i].alert);
            if (r[i].t >= t_meas) {
                rs_mev_add(mev, r[i].t, r[i].ent, r[i].truth, r[i].fail,
                           &r[i].pscore, r[i].alert,
                           (uint32_t)(rs_alertpol_is_open(pol, r[i].ent) !=
                                      0));
                msc[nm] = r[i].score;
                mlab[nm++] = r[i].truth;
            }
            if (r[i].fail) rs_alertpol_failure(pol, r[i].ent, r[i].t, NULL);
        }
        res->maint = rs_mev_report(mev);
        res->maint_model_auc = rs_auc_exact(msc, mlab, nm);
        res->maint_model_ap = rs_ap_exact(msc, mlab, nm);
    }
    free(msc);
    free(mlab);
    rs_alertpol_destroy(pol);
    rs_mev_destroy(mev);
    free(r);
}

int rs_harness_run(rs_app_conf_t *app, const rs_gen_conf_t *gconf,
                   const rs_harness_opts_t *opts, rs_harness_result_t *res) {
    char errstr[512];
    int rc = RS_EXIT_RUNTIME;
    memset(res, 0, sizeof(*res));
    rs_feeder_t *f = rs_calloc(1, sizeof(*f));
    rs_service_t *svc = NULL;
    pthread_t th;
    int started = 0;
    const char *topics[] = {app->ingest.topic_events, app->ingest.topic_labels,
                            app->ingest.topic_scores, app->ingest.topic_alerts,
                            app->ingest.topic_dlq};
    rs_cluster_t *cluster = rs_cluster_new(1, topics, (int)RS_ARRAY_LEN(topics),
                                           (int)app->ingest.partitions, errstr,
                                           sizeof(errstr));
    if (!cluster) {
        fprintf(stderr, "riskstream: embedded Kafka: %s\n", errstr);
        goto done;
    }
    const char *bootstrap = rs_cluster_bootstraps(cluster);
    app->state_ephemeral = 1; /* the topics end with the process */
    /* the generator's label delay is known: declared, as a user would */
    if (!app->model.label_delay)
        app->model.label_delay = gconf->mode == RS_GEN_MODE_SENSORS
                                     ? gconf->failure_label_delay_ms
                                     : (int64_t)((double)gconf->label_delay_ms *
                                                 (1.0 + gconf->label_jitter));
    rs_app_conf_resolve(app);
    if (opts->progress) printf("kafka bootstrap: %s\n", bootstrap);
    if (rs_cluster_watch(cluster, 1000, errstr, sizeof(errstr)) != RS_OK)
        rs_warn("harness", "%s (retention drops will not be reported)",
                errstr);

    rs_err_t err;
    svc = rs_service_new(app, bootstrap, &err, errstr, sizeof(errstr));
    if (!svc) {
        fprintf(stderr, "riskstream: %s\n", errstr);
        rc = err == RS_ERR_CONFIG ? RS_EXIT_USAGE : RS_EXIT_RUNTIME;
        goto done;
    }
    f->gen = rs_gen_new(gconf, errstr, sizeof(errstr));
    if (!f->gen) {
        fprintf(stderr, "riskstream: generator: %s\n", errstr);
        rc = RS_EXIT_USAGE;
        goto done;
    }
    f->prod = rs_kafka_producer_new(&app->kafka, bootstrap, errstr,
                                    sizeof(errstr));
    if (!f->prod) {
        fprintf(stderr, "riskstream: producer: %s\n", errstr);
        goto done;
    }
    f->t_events = app->ingest.topic_events;
    f->t_labels = app->ingest.topic_labels;
    f->ev_fmt = (rs_format_t)app->ingest.events_format;
    f->lb_fmt = (rs_format_t)app->ingest.labels_format;
    f->opts = *opts;
    /* ~4000 events (~1.2 MB of JSON) per partition: well inside the
     * mock's ~5 MB retention. */
    if (f->opts.max_backlog <= 0)
        f->opts.max_backlog = 4000 * RS_MAX(app->ingest.partitions, 1);
    if (rs_time_parse(gconf->start_time, strlen(gconf->start_time),
                      &f->t0_ms) != 0)
        f->t0_ms = 0;
    f->span_ms = gconf->duration_ms;
    if (pthread_create(&th, NULL, rs_feeder_main, f)) goto done;
    started = 1;

    if (opts->warmup_events <= 0) atomic_store(&f->warm, 1);
    rs_harness_t h = {.f = f, .svc = svc, .opts = opts};
    rs_service_set_progress(svc, rs_harness_progress, &h, 100);
    err = rs_service_run(svc, &h.stop, errstr, sizeof(errstr));
    if (opts->progress) printf("\n");
    atomic_store(&f->stop, 1);
    pthread_join(th, NULL);
    started = 0;
    if (err != RS_OK) {
        fprintf(stderr, "riskstream: service: %s\n", errstr);
        goto done;
    }
    rs_service_stats(svc, &res->st);
    res->measured_events = res->st.scored - h.scored0;
    res->measured_s = res->st.active_s - h.active0;
    res->produced_events = atomic_load(&f->produced_events);
    res->produced_labels = atomic_load(&f->produced_labels);
    res->gen_frauds = atomic_load(&f->frauds);
    res->feed_s = f->feed_s;
    res->offered_rate = f->feed_s > 0 ? res->produced_events / f->feed_s : 0;
    res->dropped_events = rs_cluster_dropped(cluster, f->t_events, 1);
    res->dropped_labels = rs_cluster_dropped(cluster, f->t_labels, 0);
    res->dropped_scores = rs_cluster_dropped(cluster, app->ingest.topic_scores,
                                             0);
    res->dropped_alerts = rs_cluster_dropped(cluster, app->ingest.topic_alerts,
                                             0);
    if (res->produced_events > res->st.scored + res->st.rejected)
        res->unread_events =
            res->produced_events - (res->st.scored + res->st.rejected);
    if (h.stalled)
        rs_error("harness", "%llu produced events never reached the service "
                 "(stopped after 10 s without progress)%s",
                 (unsigned long long)res->unread_events,
                 res->dropped_events > 0
                     ? ": the embedded broker's retention dropped them "
                       "before they were read" : "");
    rs_strlcpy(res->example_id, rs_service_example_id(svc),
               sizeof(res->example_id));
    if (res->example_id[0] &&
        rs_service_lookup(svc, res->example_id, res->example_json,
                          sizeof(res->example_json), errstr,
                          sizeof(errstr)) != RS_OK)
        snprintf(res->example_json, sizeof(res->example_json),
                 "(lookup failed: %s)", errstr);
    if (opts->maintenance) rs_harness_maint(svc, app, f, res);
    rc = atomic_load(&f->errors) ? RS_EXIT_RUNTIME : RS_EXIT_OK;

done:
    if (started) {
        atomic_store(&f->stop, 1);
        pthread_join(th, NULL);
    }
    rs_service_destroy(svc);
    if (f->prod) rd_kafka_destroy(f->prod);
    rs_gen_destroy(f->gen);
    free(f->truth);
    free(f);
    rs_cluster_destroy(cluster);
    return rc;
}

void rs_harness_machine(char *buf, size_t size) {
    char model[256] = "unknown CPU";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (fp) {
        char line[512];
        while (fgets(line, sizeof(line), fp))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    p++;
                    while (*p == ' ') p++;
                    p[strcspn(p, "\n")] = '\0';
                    rs_strlcpy(model, p, sizeof(model));
                }
                break;
            }
        fclose(fp);
    }
    struct utsname u;
    uname(&u);
    snprintf(buf, size, "%s, %ld cores, %s %s", model,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
}
