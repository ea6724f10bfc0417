/* eval_stream.h -- the small synthetic card stream test_eval.c and
 * test_train.c replay: 40 cards over 6 days from T0; "testing" bursts of
 * tiny amounts at odd merchants are the positives.  Deterministic (seed
 * 7).  Test support only. */
#ifndef RS_TEST_EVAL_STREAM_H
#define RS_TEST_EVAL_STREAM_H

#include "ops/eval/eval.h"

#define DAY 86400000LL
#define T0 1767225600000LL   /* 2026-01-01T00:00:00Z */

typedef struct {
    rs_event_t *ev;       /* [n] events, time order                      */
    int *y;               /* [n] 1: a positive                           */
    int n;
} stream_t;

/* Fill s (allocates ev and y: stream_free). */
void stream_make(stream_t *s);
void stream_free(stream_t *s);

#endif /* RS_TEST_EVAL_STREAM_H */
