/* model_priv.h -- the state of an rs_model_t, private to model/model.c
 * and model/model_file.c (never include it elsewhere: model.h keeps the
 * handle opaque; model_int.h is what the rest of model/ and the tests
 * see).
 *
 * model.c: configuration, new/destroy, scoring, weight snapshots,
 * learning, versions ("lr", and the dispatch to the "seq" kind);
 * model_file.c: the model file (byte writer/reader, load-time value
 * checks, save/load/peek).  The functions declared at the end are what
 * model_file.c calls in model.c.
 */
#ifndef RS_MODEL_PRIV_H
#define RS_MODEL_PRIV_H

#include "model/seq_int.h"

#define RS_MODEL_DIM_MAX     (1 << 20)
#define RS_VNAMED_BIT (1ull << 63) /* saved vstep: the number was set */

/* ------------------------------------------------------------- state */

struct rs_model_s {
    rs_model_conf_t conf;
    rs_seq_t *seq;                      /* kind "seq": everything below but
                                         * names is unused                 */
    int dim;
    char (*names)[RS_MODEL_NAME_MAX];   /* [dim] */
    uint32_t conf_hash;
    uint32_t names_hash;                /* input log header ("lr")       */

    /* standardiser */
    uint64_t nobs;
    int64_t std_tlast;                  /* time of the newest observation */
    double *mean, *m2;                  /* [dim] running mean, var * nobs */
    float *mu, *istd;                   /* [dim] derived, used by scoring */

    /* parameters */
    double *w;                          /* [dim + 1], bias last: master  */
    double *wa;                         /* [dim + 1] their average        */
    uint64_t avn;                       /* steps averaged                 */
    int64_t avt;                        /* event time of the newest one   */
    float *w32;                         /* [dim] float copy for BLAS     */
    float b32;
    double *am, *av;                    /* [dim + 1] Adam moments        */
    uint64_t adam_t;

    /* scratch */
    int batch_max;
    float *zb;                          /* [batch_max][dim] standardised */
    float *lg;                          /* [batch_max] logits            */
    float *zrow;                        /* [dim]                         */
    double *grad;                       /* [dim + 1]                     */

    float *xrec;                        /* [dim] a record's x, aligned   */

    uint64_t updates, positives, negatives, horizon_negatives, corrections,
        replays;
    uint64_t vstep;
    int vnamed;                         /* vstep set by rs_model_set_version */
    char version[RS_VERSION_MAX];
    char vtag[RS_MODEL_TAG_MAX + 1];    /* rs_model_set_version_tag      */
    rs_model_weights_t *wuse;           /* "lr": snapshot copied into w32,
                                         * b32, mu, istd for scoring      */
};

/* model.c, for the reader (model_file.c).  Hash of the feature names
 * (input log headers, "seq" lineage). */
uint32_t rs_model_names_hash(int dim, const char *const *names);
/* mu/istd from the Welford state; w32/b32 from w; m->version from the
 * config hash, version step and tag ("lr"). */
void rs_model_refresh_std(rs_model_t *m);
void rs_model_refresh_w(rs_model_t *m);
void rs_model_name_version(rs_model_t *m);

#endif /* RS_MODEL_PRIV_H */
