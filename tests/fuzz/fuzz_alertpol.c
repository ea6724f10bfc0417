/* fuzz_alertpol.c -- libFuzzer target for the alert policy's checkpoint
 * record reader (model/maint.h rs_alertpol_ckpt_read), the path the
 * service takes at start to restore the maintenance alert table from its
 * checkpoint (scoring/svc_ckpt.c record RMAP).
 *
 * Input: the record ("RSAP" | version | rs_alertpol_save's table).  The
 * reader is a policy of FUZZ_AP_CAP machines that already holds machines
 * of its own (one in an open episode).
 *
 * Oracle: RS_OK or RS_ERR_CORRUPT with a message; on an error the table
 * is unchanged (its record is the same bytes as before).  After RS_OK: at
 * most FUZZ_AP_CAP machines, open <= machines, the record written is the
 * input's size with the same entries (in table order), reads into a fresh
 * policy and writes the same bytes again, and the policy still steps,
 * fails and resets machines.
 *
 * Seeds: tests/fuzz/corpus/fuzz_alertpol, real records written by this
 * file built as fuzz_alertpol_seeds (-DFUZZ_AP_MAKE_SEEDS): empty, a few
 * machines (open, debouncing, in a cool-down), a full table.  Run it
 * again when the format changes:
 *   cmake --build BUILD --target fuzz_alertpol_seeds &&
 *   BUILD/tests/fuzz/fuzz_alertpol_seeds tests/fuzz/corpus/fuzz_alertpol
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/maint.h"

#define FUZZ_AP_CAP 16
#define FUZZ_AP_ENTRY 48
#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

static rs_alertpol_t *fuzz_pol(int cap) {
    rs_maint_conf_t c;
    rs_maint_conf_init(&c);
    c.alert_readings = 2;
    c.alert_cooldown = 3600000;
    c.alert_escalation = 0.2;
    c.max_machines = cap;
    char errstr[256];
    rs_alertpol_t *p = rs_alertpol_new(&c, errstr, sizeof(errstr));
    FUZZ_CHECK(p);
    return p;
}

/* n machines: every third in an open episode, others debouncing or
 * closed in a cool-down. */
static void fuzz_fill(rs_alertpol_t *p, int n) {
    for (int m = 0; m < n; m++) {
        uint64_t key = 1000 + (uint64_t)m * 7919;
        int64_t t = 1700000000000LL;
        int k = m % 3 == 0 ? 3 : m % 3 == 1 ? 1 : 6;
        for (int j = 0; j < k; j++, t += 600000)
            rs_alertpol_step(p, key, t, j < 3 ? 0.9f : 0.1f);
    }
}

#ifndef FUZZ_AP_MAKE_SEEDS
static uint8_t *fuzz_rec(const rs_alertpol_t *p, size_t *len) {
    *len = rs_alertpol_ckpt_size(p);
    uint8_t *b = malloc(*len);
    rs_alertpol_ckpt_write(p, b);
    return b;
}

/* Entry e (48 bytes) is among the n entries of table t. */
static int fuzz_has(const uint8_t *t, uint64_t n, const uint8_t *e) {
    for (uint64_t i = 0; i < n; i++)
        if (!memcmp(t + i * FUZZ_AP_ENTRY, e, FUZZ_AP_ENTRY)) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char errstr[512];
    rs_alertpol_t *p = fuzz_pol(FUZZ_AP_CAP);
    fuzz_fill(p, 5);
    size_t l0;
    uint8_t *r0 = fuzz_rec(p, &l0);
    rs_err_t err = rs_alertpol_ckpt_read(p, data, size, errstr, sizeof(errstr));
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_alertpol: %zu bytes: %s\n", size,
                err == RS_OK ? "ok" : errstr);
    if (err != RS_OK) {
        FUZZ_CHECK(err == RS_ERR_CORRUPT && errstr[0]);
        size_t l1;
        uint8_t *r1 = fuzz_rec(p, &l1);
        FUZZ_CHECK(l1 == l0 && !memcmp(r0, r1, l0));
        free(r1);
        free(r0);
        rs_alertpol_destroy(p);
        return 0;
    }
    free(r0);
    rs_alertpol_stats_t st;
    rs_alertpol_stats(p, &st);
    FUZZ_CHECK(st.machines <= FUZZ_AP_CAP && st.open <= st.machines);
    size_t la, lb;
    uint8_t *a = fuzz_rec(p, &la);
    FUZZ_CHECK(la == size && !memcmp(a, data, 16 < size ? 16 : size));
    for (uint64_t i = 0; i < st.machines; i++) /* the same entries */
        FUZZ_CHECK(fuzz_has(data + 16, st.machines, a + 16 + i * FUZZ_AP_ENTRY));
    rs_alertpol_t *q = fuzz_pol(FUZZ_AP_CAP);
    FUZZ_CHECK(rs_alertpol_ckpt_read(q, a, la, errstr, sizeof(errstr)) == RS_OK);
    uint8_t *b = fuzz_rec(q, &lb);
    FUZZ_CHECK(lb == la);
    for (uint64_t i = 0; i < st.machines; i++)
        FUZZ_CHECK(fuzz_has(a + 16, st.machines, b + 16 + i * FUZZ_AP_ENTRY));
    /* the restored table is usable */
    for (uint64_t i = 0; i < st.machines; i++) {
        uint64_t key;
        memcpy(&key, a + 16 + i * FUZZ_AP_ENTRY, 8);
        int64_t lead;
        rs_alertpol_step(q, key, 1700000000000LL, 0.95f);
        (void)rs_alertpol_lead(q, key, 1700003600000LL);
        if (i & 1) rs_alertpol_failure(q, key, 1700003600000LL, &lead);
        else rs_alertpol_reset(q, key);
    }
    rs_alertpol_stats(q, &st);
    FUZZ_CHECK(st.open <= st.machines);
    free(a);
    free(b);
    rs_alertpol_destroy(q);
    rs_alertpol_destroy(p);
    return 0;
}
#else
/* Seed writer: fuzz_alertpol_seeds DIR */
static void fuzz_seed(const char *dir, const char *name, int n) {
    char path[4096];
    rs_alertpol_t *p = fuzz_pol(FUZZ_AP_CAP);
    fuzz_fill(p, n);
    size_t len = rs_alertpol_ckpt_size(p);
    uint8_t *b = malloc(len);
    rs_alertpol_ckpt_write(p, b);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(b, 1, len, f) == len && fclose(f) == 0);
    free(b);
    rs_alertpol_destroy(p);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_alertpol_seeds DIR\n");
        return 2;
    }
    fuzz_seed(argv[1], "empty", 0);
    fuzz_seed(argv[1], "few", 4);
    fuzz_seed(argv[1], "full", FUZZ_AP_CAP);
    return 0;
}
#endif
