/* features_opcond.c -- features.setting_fields: the rs_opcond_t of a
 * features handle (features/opcond.h), built at rs_features_new from the
 * compiled tables.  Start-up only. */
#include "features/features_int.h"
#include "features/opcond.h"

#include <string.h>

rs_err_t rs_fe_opcond_new(rs_features_t *f, char *errstr, size_t errstr_size) {
    const char *p = f->conf.setting_fields;
    if (!p[0]) return RS_OK;
    rs_opcond_conf_t oc;
    memset(&oc, 0, sizeof(oc));
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= RS_NAME_MAX)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.setting_fields: field name '%.*s' must "
                           "be 1-%d characters",
                           (int)n, p, RS_NAME_MAX - 1);
        if (oc.nset == RS_OPCOND_MAX_SETTINGS)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.setting_fields: more than %d fields",
                           RS_OPCOND_MAX_SETTINGS);
        char name[RS_NAME_MAX];
        memcpy(name, p, n);
        name[n] = '\0';
        if (rs_fe_field_kind(name, 1) != RS_FE_K_NUMERIC)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "features.setting_fields: '%s' is not a numeric "
                           "field name", name);
        memcpy(oc.set[oc.nset++], name, n + 1);
        p += n;
        if (*p == ',') p++;
    }
    /* the normalised fields: every numeric value of a table, but the
     * settings themselves */
    for (int t = 0; t < f->ntab; t++) {
        const rs_fe_tab_t *tb = &f->tab[t];
        for (int v = 0; v < tb->nv; v++) {
            if (tb->vkind[v] != RS_FE_K_NUMERIC) continue;
            int dup = 0;
            for (int d = 0; d < oc.nset && !dup; d++)
                dup = !strcmp(oc.set[d], tb->vname[v]);
            for (int j = 0; j < oc.nfield && !dup; j++)
                dup = !strcmp(oc.field[j], tb->vname[v]);
            if (dup) continue;
            if (oc.nfield == RS_OPCOND_MAX_FIELDS)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "features.setting_fields: more than %d numeric "
                               "fields to normalise",
                               RS_OPCOND_MAX_FIELDS);
            rs_strlcpy(oc.field[oc.nfield++], tb->vname[v], RS_NAME_MAX);
        }
    }
    oc.max_conditions = f->conf.conditions > 0 ? (int)f->conf.conditions
                                               : RS_OPCOND_MAX_CONDITIONS;
    oc.warmup = RS_OPCOND_MAX_WARMUP;
    oc.min_readings = RS_OPCOND_MIN_READINGS;
    f->opc = rs_opcond_create(&oc, errstr, errstr_size);
    if (!f->opc) return RS_ERR_CONFIG;
    /* a checkpoint of another normalisation is another layout */
    uint64_t g = (uint64_t)oc.max_conditions;
    f->fingerprint = rs_hash64_seed(f->conf.setting_fields,
                                    strlen(f->conf.setting_fields),
                                    f->fingerprint ^ g);
    return RS_OK;
}
