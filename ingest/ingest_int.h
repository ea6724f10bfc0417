/* ingest_int.h -- private helpers shared by the ingest sources.  Not a
 * public interface. */
#ifndef RS_INGEST_INT_H
#define RS_INGEST_INT_H

#include "ingest/ingest.h"

/* 1 if a property key names a secret (its value must never be logged). */
int rs_kafka_key_is_secret(const char *key);

/* rd_kafka_conf_set with an errstr naming the key (never a secret value). */
rs_err_t rs_kafka_conf_set1(rd_kafka_conf_t *conf, const char *key,
                            const char *val, char *errstr,
                            size_t errstr_size);

#endif /* RS_INGEST_INT_H */
