/* test_schema_names.c -- one set of field names for the records, wherever
 * they appear:
 *   - proto/riskstream.proto (the protobuf-c descriptors built from it:
 *     names and numbers),
 *   - the JSON encoders (rs_event_to_json, rs_label_to_json,
 *     rs_score_to_json: the scores topic, Redis JSON records, every audit
 *     read -- the compact Redis record decodes to the same JSON, see
 *     test_sinks_redis_rec),
 *   - docs/schema.md's field tables (name and number of every row, and the
 *     `{a, b}` element lists of the explanation table).
 * Each message's field set must be the same in all three.  A field added to
 * the .proto without its JSON key, or a renamed key, or a doc row left
 * behind fails here, naming the message and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/proto.h"
#include "riskstream.pb-c.h"

/* ------------------------------------------------------------ name sets */

#define NAMES_MAX 32
typedef struct names_s {
    int n;
    char name[NAMES_MAX][48];
    int num[NAMES_MAX]; /* field number; 0 = none given */
} names_t;

static void names_add(names_t *s, const char *name, size_t len, int num) {
    if (len >= sizeof(s->name[0])) len = sizeof(s->name[0]) - 1;
    for (int i = 0; i < s->n; i++)
        if (strlen(s->name[i]) == len && !memcmp(s->name[i], name, len)) return;
    assert_true(s->n < NAMES_MAX);
    memcpy(s->name[s->n], name, len);
    s->name[s->n][len] = '\0';
    s->num[s->n++] = num;
}

static int names_find(const names_t *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return i;
    return -1;
}

static void names_from_desc(names_t *s, const ProtobufCMessageDescriptor *d) {
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < d->n_fields; i++)
        names_add(s, d->fields[i].name, strlen(d->fields[i].name),
                  (int)d->fields[i].id);
}

/* Compare `got` (from `where`) with the proto message: the same names, and
 * the same numbers where `got` has them.  Returns the mismatches (each
 * printed). */
static int names_cmp(const ProtobufCMessageDescriptor *d, const names_t *got,
                     const char *where) {
    names_t want;
    names_from_desc(&want, d);
    int bad = 0;
    for (int i = 0; i < want.n; i++) {
        int j = names_find(got, want.name[i]);
        if (j < 0) {
            printf("%s: %s.%s (proto field %d) missing\n", where, d->short_name,
                   want.name[i], want.num[i]);
            bad++;
        } else if (got->num[j] && got->num[j] != want.num[i]) {
            printf("%s: %s.%s has number %d, proto %d\n", where, d->short_name,
                   want.name[i], got->num[j], want.num[i]);
            bad++;
        }
    }
    for (int j = 0; j < got->n; j++)
        if (names_find(&want, got->name[j]) < 0) {
            printf("%s: %s.%s is not a field of the proto message\n", where,
                   d->short_name, got->name[j]);
            bad++;
        }
    return bad;
}

/* ------------------------------------------------------------ JSON keys */

/* The keys of the object at `path` in `root` ("a.b[]" = the elements of
 * array b of object a; "" = the root), union over array elements. */
static void json_keys_at(json_t *v, const char *path, names_t *out) {
    if (!*path) {
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) json_keys_at(e, path, out);
            return;
        }
        assert_true(json_is_object(v));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) names_add(out, k, strlen(k), 0);
        return;
    }
    size_t n = strcspn(path, ".[");
    char key[64];
    assert_true(n < sizeof(key));
    memcpy(key, path, n);
    key[n] = '\0';
    json_t *child = json_object_get(v, key);
    assert_non_null(child);
    const char *rest = path + n;
    if (!strncmp(rest, "[]", 2)) {
        assert_true(json_is_array(child));
        assert_true(json_array_size(child) > 0);
        rest += 2;
    }
    if (*rest == '.') rest++;
    json_keys_at(child, rest, out);
}

/* Every object path of `v` (to check that each one is compared). */
static void json_paths(json_t *v, const char *path, names_t *out) {
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        char p[128];
        snprintf(p, sizeof(p), "%s[]", path);
        json_array_foreach(v, i, e) if (json_is_object(e) || json_is_array(e))
            json_paths(e, p, out);
        return;
    }
    if (!json_is_object(v)) return;
    names_add(out, path, strlen(path), 0);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
        json_paths(x, p, out);
    }
}

typedef struct map_s {
    const char *path;
    const ProtobufCMessageDescriptor *desc;
} map_t;

static int json_check(const char *json, const map_t *map, size_t nmap,
                      const char *what) {
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root) fail_msg("%s JSON does not parse: %s\n%s", what, jerr.text, json);
    int bad = 0;
    for (size_t i = 0; i < nmap; i++) {
        names_t got;
        memset(&got, 0, sizeof(got));
        json_keys_at(root, map[i].path, &got);
        char where[96];
        snprintf(where, sizeof(where), "%s JSON at '%s'", what, map[i].path);
        bad += names_cmp(map[i].desc, &got, where);
    }
    names_t paths;
    memset(&paths, 0, sizeof(paths));
    json_paths(root, "", &paths);
    for (int j = 0; j < paths.n; j++) {
        size_t i = 0;
        while (i < nmap && strcmp(map[i].path, paths.name[j])) i++;
        if (i == nmap) {
            printf("%s JSON: object at '%s' not compared\n", what, paths.name[j]);
            bad++;
        }
    }
    json_decref(root);
    return bad;
}

/* Records with every field set (non-zero), so every key is written. */
static void fill_event(rs_event_t *ev) {
    memset(ev, 0, sizeof(*ev));
    strcpy(ev->id, "tx-1");
    strcpy(ev->type, "card_tx");
    strcpy(ev->entity_id, "card-1");
    strcpy(ev->counterparty_id, "m-1");
    ev->event_time_ms = 1709294400250LL;
    ev->amount = 12.5;
    ev->n_numeric = 1;
    strcpy(ev->numeric[0].name, "hour");
    ev->numeric[0].value = 3;
    ev->n_categ = 1;
    strcpy(ev->categ[0].name, "mcc");
    strcpy(ev->categ[0].value, "5411");
}

static void fill_score(rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    strcpy(sc->event_id, "tx-1");
    strcpy(sc->entity_id, "card-1");
    sc->score = 0.75f;
    sc->decision = RS_DECISION_REVIEW;
    strcpy(sc->model_version, "v1");
    sc->event_time_ms = 1709294400250LL;
    sc->scored_at_ms = 1709294400260LL;
    sc->latency_us = 17;
    sc->flags = RS_SCORE_FLAG_LATE;
    sc->rul = 3600000;
    sc->alert_score = 0.875f;
    rs_explanation_t *ex = &sc->explanation;
    ex->n_attended = 1;
    strcpy(ex->attended[0].event_id, "tx-0");
    ex->attended[0].event_time_ms = 1709294400000LL;
    ex->attended[0].amount = 3;
    strcpy(ex->attended[0].counterparty_id, "m-0");
    ex->attended[0].weight = 0.5f;
    ex->n_contrib = 1;
    strcpy(ex->contrib[0].name, "ent_count_1h");
    ex->contrib[0].value = 7;
    ex->contrib[0].contribution = 1.25f;
    strcpy(ex->contrib[0].text, "7 payments in the last hour");
    ex->n_experts = 1;
    ex->experts[0].expert = 2;
    ex->experts[0].gate_weight = 0.5f;
    ex->n_reasons = 1;
    strcpy(ex->reasons[0], "7 payments in the last hour");
    rs_event_t ev;
    fill_event(&ev);
    rs_event_fields_from_event(&sc->event, &ev);
}

static void test_json_names(void **state) {
    (void)state;
    static char buf[RS_ENCODE_MAX];
    int bad = 0;

    rs_event_t ev;
    fill_event(&ev);
    assert_true(rs_event_to_json(&ev, buf, sizeof(buf)) > 0);
    const map_t ev_map[] = {
        {"", &riskstream__v1__event__descriptor},
        {"numeric_fields[]", &riskstream__v1__numeric_field__descriptor},
        {"categorical_fields[]", &riskstream__v1__categorical_field__descriptor},
    };
    bad += json_check(buf, ev_map, sizeof(ev_map) / sizeof(ev_map[0]), "Event");

    rs_label_t lb = {.value = 1, .label_time_ms = 1709294400250LL};
    strcpy(lb.event_id, "tx-1");
    strcpy(lb.entity_id, "card-1");
    assert_true(rs_label_to_json(&lb, buf, sizeof(buf)) > 0);
    const map_t lb_map[] = {{"", &riskstream__v1__label__descriptor}};
    bad += json_check(buf, lb_map, 1, "Label");

    rs_score_t sc;
    fill_score(&sc);
    assert_true(rs_score_to_json(&sc, buf, sizeof(buf)) > 0);
    const map_t sc_map[] = {
        {"", &riskstream__v1__score__descriptor},
        {"explanation", &riskstream__v1__explanation__descriptor},
        {"explanation.attended_events[]",
         &riskstream__v1__attended_event__descriptor},
        {"explanation.feature_contributions[]",
         &riskstream__v1__feature_contribution__descriptor},
        {"explanation.experts[]", &riskstream__v1__expert_use__descriptor},
        {"event", &riskstream__v1__event_fields__descriptor},
        {"event.numeric_fields[]", &riskstream__v1__numeric_field__descriptor},
        {"event.categorical_fields[]",
         &riskstream__v1__categorical_field__descriptor},
    };
    bad += json_check(buf, sc_map, sizeof(sc_map) / sizeof(sc_map[0]), "Score");
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------- docs/schema.md */

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data) - 1, fp);
    fclose(fp);
    data[n] = '\0';
    return data;
}

/* The rows "| `name` | N | ..." of the table that starts at or after
 * `from` (the first line beginning with "| field | # |"); with elem >= 0,
 * instead the names of the `{a, b, c}` list in column `elem` of the row
 * named `row`.  Returns the end of the table. */
static const char *md_table(const char *from, names_t *out, const char *row,
                            int elem) {
    memset(out, 0, sizeof(*out));
    const char *t = strstr(from, "\n| field | # |");
    if (!t) fail_msg("docs/schema.md: no field table after offset");
    const char *p = strchr(t + 1, '\n') + 1; /* the |---| line */
    p = strchr(p, '\n') + 1;
    while (*p == '|') {
        const char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        const char *c = p + 1;
        while (*c == ' ') c++;
        if (*c == '`') {
            const char *name = c + 1, *e = strchr(name, '`');
            assert_non_null(e);
            int num = atoi(strchr(e, '|') + 1);
            if (elem < 0) {
                names_add(out, name, (size_t)(e - name), num);
            } else if ((size_t)(e - name) == strlen(row) &&
                       !strncmp(name, row, strlen(row))) {
                const char *cell = e;
                for (int k = 0; k < elem; k++) cell = strchr(cell + 1, '|');
                const char *lb = strchr(cell, '{'), *rb = strchr(cell, '}');
                assert_true(lb && rb && rb < eol);
                for (const char *q = lb + 1; q < rb;) {
                    while (*q == ' ' || *q == ',') q++;
                    size_t n = strcspn(q, ", }");
                    if (n) names_add(out, q, n, 0);
                    q += n;
                }
            }
        }
        p = *eol ? eol + 1 : eol;
    }
    return p;
}

static int md_check(const char *from, const ProtobufCMessageDescriptor *d,
                    const char *row, int elem) {
    names_t got;
    md_table(from, &got, row, elem);
    return names_cmp(d, &got, "docs/schema.md");
}

static void test_schema_md(void **state) {
    (void)state;
    const char *src = getenv("RS_SOURCE_DIR");
    if (!src) src = ".";
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/schema.md", src);
    const char *md = slurp(path);
    const char *ev = strstr(md, "\n## Event\n"), *lb = strstr(md, "\n## Label\n"),
               *sc = strstr(md, "\n## Score\n");
    assert_true(ev && lb && sc);
    int bad = 0;
    names_t t;
    bad += md_check(ev, &riskstream__v1__event__descriptor, NULL, -1);
    /* the element lists of `numeric_fields` / `categorical_fields` */
    bad += md_check(ev, &riskstream__v1__numeric_field__descriptor,
                    "numeric_fields", 2);
    bad += md_check(ev, &riskstream__v1__categorical_field__descriptor,
                    "categorical_fields", 2);
    bad += md_check(lb, &riskstream__v1__label__descriptor, NULL, -1);
    const char *p = md_table(sc, &t, NULL, -1); /* Score */
    bad += names_cmp(&riskstream__v1__score__descriptor, &t, "docs/schema.md");
    /* then `explanation` and its element lists, then `event` */
    bad += md_check(p, &riskstream__v1__explanation__descriptor, NULL, -1);
    bad += md_check(p, &riskstream__v1__attended_event__descriptor,
                    "attended_events", 2);
    bad += md_check(p, &riskstream__v1__feature_contribution__descriptor,
                    "feature_contributions", 2);
    bad += md_check(p, &riskstream__v1__expert_use__descriptor, "experts", 2);
    p = md_table(p, &t, NULL, -1);
    bad += md_check(p, &riskstream__v1__event_fields__descriptor, NULL, -1);
    bad += md_check(p, &riskstream__v1__numeric_field__descriptor,
                    "numeric_fields", 2);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_names),
        cmocka_unit_test(test_schema_md),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
