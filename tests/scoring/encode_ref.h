/* encode_ref.h -- frozen reference encoders (encode_ref.c), for tests. */
#ifndef RS_TEST_ENCODE_REF_H
#define RS_TEST_ENCODE_REF_H
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

int ref_score_to_json(const rs_score_t *sc, char *buf, size_t size);
int ref_event_to_json(const rs_event_t *ev, char *buf, size_t size);
int ref_label_to_json(const rs_label_t *lb, char *buf, size_t size);
int ref_redis_rec_encode(const rs_score_t *sc, uint8_t *buf, size_t size);
#endif
