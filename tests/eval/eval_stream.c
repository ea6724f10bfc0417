/* eval_stream.c -- the synthetic stream of eval_stream.h. */
#include "eval_stream.h"

#include <stdio.h>
#include <stdlib.h>

/* 40 cards over 6 days; a few "testing" bursts of tiny amounts at odd
 * merchants are positives.  Deterministic. */
void stream_make(stream_t *s) {
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    int cap = 4000;
    s->ev = calloc((size_t)cap, sizeof(*s->ev));
    s->y = calloc((size_t)cap, sizeof(*s->y));
    s->n = 0;
    int64_t t = T0;
    while (s->n < cap - 20 && t < T0 + 6 * DAY) {
        t += 60000 + (int64_t)rs_rng_below(&rng, 240000);
        int burst = rs_rng_uniform(&rng) < 0.01 && t > T0 + DAY / 2;
        int card = (int)rs_rng_below(&rng, 40);
        int k = burst ? 6 : 1;
        for (int j = 0; j < k; j++) {
            rs_event_t *e = &s->ev[s->n];
            snprintf(e->id, sizeof(e->id), "tx-%d", s->n + 1);
            snprintf(e->type, sizeof(e->type), "card_tx");
            snprintf(e->entity_id, sizeof(e->entity_id), "card-%d", card);
            snprintf(e->counterparty_id, sizeof(e->counterparty_id), "m-%d",
                     burst ? 900 + j % 2 : (int)rs_rng_below(&rng, 30));
            e->event_time_ms = t + j * 20000;
            e->amount = burst ? 0.5 + rs_rng_uniform(&rng)
                              : 10 + 40 * rs_rng_uniform(&rng);
            e->n_categ = 1;
            snprintf(e->categ[0].name, sizeof(e->categ[0].name), "mcc");
            snprintf(e->categ[0].value, sizeof(e->categ[0].value), "%s",
                     burst ? "digital_goods" : "grocery");
            s->y[s->n] = burst;
            s->n++;
        }
        t += (k - 1) * 20000;
    }
}

void stream_free(stream_t *s) {
    free(s->ev);
    free(s->y);
}
