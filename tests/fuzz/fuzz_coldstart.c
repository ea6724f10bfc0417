/* fuzz_coldstart.c -- libFuzzer target for the cold-start state readers
 * (model/coldstart.h): rs_coldstart_load, the record the service restores
 * at start (scoring/svc_ckpt.c record RMNT: versions 1 to 4), and
 * rs_coldstart_machine_load, one machine's state inside the maintenance
 * machines that follow a partition (scoring/alerts.h rs_alerts_part_*:
 * partition checkpoints and changelog records 'A').
 *
 * Input: the bytes are given to both readers (each takes what it can): to
 * rs_coldstart_load as a whole state, and to rs_coldstart_machine_load as
 * one machine's record, for the machine its own-policy entry names (bytes
 * 8..15) so that valid records pass.  The readers are blends of the
 * sensors layout (2 sensors, spans 12 and 48), tracked (own policy and
 * CUSUMs, FUZZ_CS_CAP machines), that already hold machines of their own.
 *
 * Oracle: RS_OK, or RS_ERR_CORRUPT (RS_ERR_NOMEM: a full table, machine
 * reader only) with a message; on RS_ERR_CORRUPT the blend is unchanged
 * (its saved state is the same bytes as before).  After RS_OK: caught <=
 * failures; the state saved, loaded into a fresh blend and saved again has
 * the same size, counts and spreads; the machine's record saved, loaded into a fresh blend
 * and saved again is the same bytes; the blend still observes, counts
 * failures and repairs every machine (UBSan: no overflow).
 *
 * Seeds: tests/fuzz/corpus/fuzz_coldstart, written by this file built as
 * fuzz_coldstart_seeds (-DFUZZ_CS_MAKE_SEEDS): states of version 1, 2 and
 * 5 (empty, a few machines), machine records (own entry, CUSUMs and the
 * differences' CUSUMs, `machine_diff`: flags 1 | 4 | 8, tagged with the
 * CUSUMs' span; own only); the version-3 states v3_* and the record
 * `machine` of flag 2 were written before i14cusum (CUSUMs of the
 * 48-reading means), the version-4 states v4_* and the record
 * `machine_short` (flag 4, untagged) before i16diff and i16span, and
 * `machine_span` (flag 4, tagged with N_c 12) before i16diff; all kept.
 * Run it again when a format changes:
 *   cmake --build BUILD --target fuzz_coldstart_seeds &&
 *   BUILD/tests/fuzz/fuzz_coldstart_seeds tests/fuzz/corpus/fuzz_coldstart
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/coldstart.h"

#define FUZZ_CS_CAP 16
#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)
#define FUZZ_T0 1700000000000LL

static const char *const fuzz_names[] = {
    "ent_life",
    "ent_a_base_z", "ent_a_base_z_last12_incl", "ent_a_slope_last12_incl",
    "ent_a_base_z_last48_incl", "ent_a_base_spread_last48_incl",
    "ent_b_base_z", "ent_b_base_z_last12_incl", "ent_b_base_z_last48_incl",
};
#define FUZZ_DIM 9
/* counts (24 bytes) and spreads (16 + 8 x 2 ref features, then 16 + 8 x
 * 2 CUSUM features, then the differences' 16 + 24 x 2: version 5) of a
 * state */
#define FUZZ_CS_HEAD (24 + 2 * (16 + 16) + 16 + 24 * 2)

static rs_coldstart_t *fuzz_cs(void) {
    rs_maint_conf_t mc;
    rs_maint_conf_init(&mc);
    mc.horizon = 24 * 3600000LL;
    mc.max_machines = FUZZ_CS_CAP;
    rs_coldstart_t *cs = rs_coldstart_new(fuzz_names, FUZZ_DIM, 0.3);
    char es[256];
    FUZZ_CHECK(rs_coldstart_track(cs, &mc, es, sizeof(es)) == RS_OK);
    return cs;
}

/* n machines read 8 times (every other one high, with a step). */
static void fuzz_fill(rs_coldstart_t *cs, int n) {
    float x[FUZZ_DIM] = {0};
    for (int m = 0; m < n; m++) {
        x[4] = m % 2 ? 2.5f : 0.1f;
        x[8] = -0.5f;
        x[2] = m % 2 ? 3.0f : 0.1f; /* the 12-reading means: the CUSUMs' */
        x[7] = -0.5f;
        x[1] = m % 2 ? 6.0f : 0.2f; /* the readings: the differences' */
        x[6] = -0.4f;
        for (int j = 0; j < 8; j++)
            rs_coldstart_observe(cs, 1000 + (uint64_t)m * 7919,
                                 FUZZ_T0 + j * 600000LL, x,
                                 m % 2 ? 0.9f : 0.01f);
    }
    if (n) rs_coldstart_failure(cs, 3600000LL * 10, 24 * 3600000LL);
}

static uint8_t *fuzz_state(const rs_coldstart_t *cs, size_t *len) {
    *len = rs_coldstart_state_size(cs);
    uint8_t *b = malloc(*len ? *len : 1);
    rs_coldstart_save(cs, b);
    return b;
}

#ifndef FUZZ_CS_MAKE_SEEDS
static void fuzz_use(rs_coldstart_t *cs, uint64_t key) {
    float x[FUZZ_DIM] = {0};
    x[4] = 3.0f;
    x[2] = 3.0f;
    x[1] = 6.0f;
    rs_coldstart_observe(cs, key, FUZZ_T0, x, 0.5f);
    (void)rs_coldstart_change(cs, key);
    (void)rs_coldstart_step(cs, key);
    rs_coldstart_machine_failure(cs, key, FUZZ_T0 + 3600000LL);
    rs_coldstart_repair(cs, key);
    FUZZ_CHECK(rs_coldstart_caught(cs) <= rs_coldstart_failures(cs));
}

static void fuzz_whole(const uint8_t *data, size_t size) {
    char errstr[512];
    rs_coldstart_t *cs = fuzz_cs();
    fuzz_fill(cs, 3);
    size_t l0, l1;
    uint8_t *s0 = fuzz_state(cs, &l0);
    rs_err_t err = rs_coldstart_load(cs, data, size, errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_coldstart: state of %zu bytes: %s\n", size,
                err == RS_OK ? "ok" : errstr);
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT && errstr[0]);
        uint8_t *s1 = fuzz_state(cs, &l1);
        FUZZ_CHECK(l1 == l0 && !memcmp(s0, s1, l0));
        free(s1);
    } else {
        FUZZ_CHECK(rs_coldstart_caught(cs) <= rs_coldstart_failures(cs));
        uint8_t *a = fuzz_state(cs, &l1);
        rs_coldstart_t *q = fuzz_cs();
        FUZZ_CHECK(rs_coldstart_load(q, a, l1, errstr, sizeof(errstr)) ==
                   RS_OK);
        size_t l2;
        uint8_t *b = fuzz_state(q, &l2);
        /* the same size, counts and spreads (the tables' entries may be
         * in another slot order: linear probing follows insertion) */
        FUZZ_CHECK(l2 == l1 && l1 >= FUZZ_CS_HEAD &&
                   !memcmp(a, b, FUZZ_CS_HEAD));
        for (uint64_t k = 0; k < 4; k++) fuzz_use(q, 1000 + k * 7919);
        fuzz_use(q, 77);
        free(a);
        free(b);
        rs_coldstart_destroy(q);
    }
    free(s0);
    rs_coldstart_destroy(cs);
}

static void fuzz_machine(const uint8_t *data, size_t size) {
    char errstr[512];
    uint64_t key = 77;
    if (size >= 16) memcpy(&key, data + 8, 8);
    rs_coldstart_t *cs = fuzz_cs();
    fuzz_fill(cs, 3);
    size_t l0, l1;
    uint8_t *s0 = fuzz_state(cs, &l0);
    rs_err_t err = rs_coldstart_machine_load(cs, key, data, size, errstr,
                                             sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_coldstart: machine record of %zu bytes: %s\n",
                size, err == RS_OK ? "ok" : errstr);
    if (err == RS_ERR_CORRUPT) {
        FUZZ_CHECK(errstr[0]);
        uint8_t *s1 = fuzz_state(cs, &l1);
        FUZZ_CHECK(l1 == l0 && !memcmp(s0, s1, l0));
        free(s1);
    } else if (err == RS_OK) {
        uint8_t r[RS_COLDSTART_MACHINE_MAX], r2[RS_COLDSTART_MACHINE_MAX];
        size_t n = rs_coldstart_machine_save(cs, key, r, sizeof(r));
        FUZZ_CHECK(n <= sizeof(r));
        rs_coldstart_t *q = fuzz_cs();
        if (n) {
            FUZZ_CHECK(rs_coldstart_machine_load(q, key, r, n, errstr,
                                                 sizeof(errstr)) == RS_OK);
            FUZZ_CHECK(rs_coldstart_machine_save(q, key, r2, sizeof(r2)) ==
                           n &&
                       !memcmp(r, r2, n));
        }
        fuzz_use(cs, key);
        fuzz_use(q, key);
        rs_coldstart_machine_forget(cs, key);
        FUZZ_CHECK(rs_coldstart_machine_save(cs, key, NULL, 0) == 0);
        for (uint64_t k = 0; k < 3; k++) /* the others are still there */
            if (1000 + k * 7919 != (key ? key : 1))
                FUZZ_CHECK(rs_coldstart_machine_save(cs, 1000 + k * 7919,
                                                     NULL, 0) > 0);
        rs_coldstart_destroy(q);
    } else {
        FUZZ_CHECK(err == RS_ERR_NOMEM && errstr[0]);
    }
    free(s0);
    rs_coldstart_destroy(cs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_whole(data, size);
    fuzz_machine(data, size);
    return 0;
}
#else
/* Seed writer: fuzz_coldstart_seeds DIR */
static void fuzz_put(const char *dir, const char *name, const void *b,
                     size_t len) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(b, 1, len, f) == len && fclose(f) == 0);
}

static void fuzz_seed_state(const char *dir, const char *name, int n) {
    rs_coldstart_t *cs = fuzz_cs();
    fuzz_fill(cs, n);
    size_t len;
    uint8_t *b = fuzz_state(cs, &len);
    fuzz_put(dir, name, b, len);
    free(b);
    rs_coldstart_destroy(cs);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_coldstart_seeds DIR\n");
        return 2;
    }
    /* (the v3_* seeds are version 3, written before i14cusum, the v4_*
     * version 4, before i16diff: kept) */
    fuzz_seed_state(argv[1], "v5_empty", 0);
    fuzz_seed_state(argv[1], "v5_few", 4);
    fuzz_seed_state(argv[1], "v5_full", FUZZ_CS_CAP);
    /* versions 2 and 1: the counts alone */
    uint32_t hd[2] = {0x53435352u, 2};
    uint64_t nc[2] = {5, 2};
    uint8_t v[24];
    memcpy(v, hd, 8);
    memcpy(v + 8, nc, 16);
    fuzz_put(argv[1], "v2", v, 24);
    hd[1] = 1;
    memcpy(v, hd, 8);
    fuzz_put(argv[1], "v1", v, 16);
    /* machine records: own entry and CUSUMs; own entry only */
    rs_coldstart_t *cs = fuzz_cs();
    fuzz_fill(cs, 2);
    uint8_t r[RS_COLDSTART_MACHINE_MAX];
    size_t n = rs_coldstart_machine_save(cs, 1000 + 7919, r, sizeof(r));
    FUZZ_CHECK(n > 0 && n <= sizeof(r));
    /* flags 1 | 4 | 8, tagged with N_c = 12 (since i16span) */
    fuzz_put(argv[1], "machine_diff", r, n);
    uint32_t own_only[2] = {2, 1};
    memcpy(r, own_only, 8);
    fuzz_put(argv[1], "machine_own", r, 8 + 48);
    rs_coldstart_destroy(cs);
    return 0;
}
#endif
