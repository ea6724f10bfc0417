/* fuzz_config.c -- libFuzzer target for the YAML config loader.
 *
 * Registers a section with one field of every type plus a passthrough
 * section, then feeds the input to rs_conf_load_yaml().  Any outcome but a
 * crash, a leak, UB or a hang is fine; on success the values must obey the
 * table (strings terminated, enums in range, bounds held) and the output
 * of rs_conf_dump() and of rs_conf_sample() must load back to the same
 * values.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_config.c \
 *       common/common.c common/config.c common/metrics.c \
 *       -lyaml -lxxhash -lm -o fuzz_config && ./fuzz_config
 */
#define _GNU_SOURCE /* open_memstream */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

typedef struct fuzz_conf_s {
    char name[16];
    int64_t count;
    double ratio;
    int flag;
    int64_t ttl_ms;
    int mode;
    char token[8];
} fuzz_conf_t;

#define FUZZ_F(n, t, d, field, sz, ds, ch, lo, hi)                           \
    {.name = n, .type = t, .def = d, .offset = offsetof(fuzz_conf_t, field), \
     .size = sz, .desc = ds, .choices = ch, .min = lo, .max = hi}
static const rs_conf_field_t fuzz_fields[] = {
    FUZZ_F("name", RS_CONF_STRING, "rs", name, 16, "A string", NULL, 0, 0),
    FUZZ_F("count", RS_CONF_INT, "4", count, 0, "An int", NULL, 1, 64),
    FUZZ_F("ratio", RS_CONF_DOUBLE, "0.5", ratio, 0, "A double", NULL, 0, 1),
    FUZZ_F("flag", RS_CONF_BOOL, "false", flag, 0, "A bool", NULL, 0, 0),
    FUZZ_F("ttl", RS_CONF_DURATION, "7d", ttl_ms, 0, "A duration", NULL,
           1000, 30 * 86400000.0),
    FUZZ_F("mode", RS_CONF_ENUM, "json", mode, 0, "An enum",
           "json|protobuf|csv", 0, 0),
    FUZZ_F("token", RS_CONF_STRING, "", token, 8, "A secret", NULL, 0, 0),
};

/* Fresh conf with the sample section and passthrough. */
static rs_conf_t *fuzz_conf_new(fuzz_conf_t *fc, rs_conf_section_t *sec,
                                rs_kv_t *kv) {
    *sec = (rs_conf_section_t){"redis", "sample", fuzz_fields,
                               (int)RS_ARRAY_LEN(fuzz_fields), fc};
    rs_kv_init(kv);
    rs_conf_t *conf = rs_conf_new();
    if (rs_conf_add_section(conf, sec, NULL, 0) != RS_OK) abort();
    rs_conf_add_passthrough(conf, "kafka", "passthrough", kv);
    return conf;
}

static int fuzz_secret(const char *k) {
    return strcasestr(k, "password") || strcasestr(k, "secret") ||
           strcasestr(k, "token");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_conf_t fc, fc2;
    rs_conf_section_t sec, sec2;
    rs_kv_t kv, kv2;
    char errstr[256];
    rs_conf_t *conf = fuzz_conf_new(&fc, &sec, &kv);

    errstr[0] = '\0';
    rs_err_t err = rs_conf_load_yaml(conf, (const char *)data, size, "fuzz",
                                     errstr, sizeof(errstr));
    if (err != RS_OK && (err != RS_ERR_CONFIG || !errstr[0])) abort();
    if (err == RS_OK) {
        /* Values obey the table. */
        if (!memchr(fc.name, '\0', sizeof(fc.name)) ||
            !memchr(fc.token, '\0', sizeof(fc.token)) || fc.count < 1 ||
            fc.count > 64 || !(fc.ratio >= 0 && fc.ratio <= 1) ||
            (fc.flag != 0 && fc.flag != 1) || fc.ttl_ms < 1000 ||
            fc.ttl_ms > 30 * 86400000LL || fc.mode < 0 || fc.mode > 2)
            abort();
        /* Oracle: the dump, and the commented sample, load back to the
         * same values (masked secrets aside). */
        for (int pass = 0; pass < 2; pass++) {
            char *dump = NULL;
            size_t dlen = 0;
            FILE *fp = open_memstream(&dump, &dlen);
            if (!fp) abort();
            if (pass) rs_conf_sample(conf, fp);
            else rs_conf_dump(conf, fp);
            fclose(fp);
            rs_conf_t *conf2 = fuzz_conf_new(&fc2, &sec2, &kv2);
            if (rs_conf_load_yaml(conf2, dump, dlen, "dump", errstr,
                                  sizeof(errstr)) != RS_OK) {
                fprintf(stderr, "dump does not reload: %s\n%s\n", errstr, dump);
                abort();
            }
            if (strcmp(fc.name, fc2.name) || fc.count != fc2.count ||
                fc.ratio != fc2.ratio || fc.flag != fc2.flag ||
                fc.ttl_ms != fc2.ttl_ms || fc.mode != fc2.mode ||
                (!fc.token[0] && fc2.token[0]) || kv.cnt != kv2.cnt) {
                fprintf(stderr, "dump changed values:\n%s\n", dump);
                abort();
            }
            for (int i = 0; i < kv.cnt; i++) {
                const char *v2 = rs_kv_get(&kv2, kv.keys[i]);
                if (!v2 || strcmp(v2, fuzz_secret(kv.keys[i]) ? "***"
                                                               : kv.vals[i])) {
                    fprintf(stderr, "dump changed key '%s':\n%s\n", kv.keys[i],
                            dump);
                    abort();
                }
            }
            rs_conf_destroy(conf2);
            rs_kv_free(&kv2);
            free(dump);
        }
    }
    rs_conf_destroy(conf);
    rs_kv_free(&kv);
    return 0;
}
