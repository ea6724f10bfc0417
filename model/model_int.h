/* model_int.h -- internals of model/ shared with its unit tests only.
 * Not part of the public API; nothing outside model/ and tests/model
 * includes it. */
#ifndef RS_MODEL_INT_H
#define RS_MODEL_INT_H

#include "model/model.h"

/* Class-weighted logistic loss of one standardised row and its gradient:
 *   l    = b + sum_i w_i z_i
 *   loss = c * (softplus(l) - y * l) + l2/2 * |w|^2,  c = pos_weight if y
 *   grad[i] = c * (sigmoid(l) - y) * z_i + l2 * w_i,  grad[dim] = bias term
 * w is [dim + 1] with the bias last.  Returns the loss. */
double rs_lr_loss_grad(const double *w /* [dim+1] */, const float *z /* [dim] */,
                       int dim, int y, double pos_weight, double l2,
                       double *grad /* [dim+1], may be NULL */);

/* Little-endian writer into a growing buffer (cold path: may allocate)
 * and bounds-checked reader (b->bad set on any overrun), shared by the
 * model kinds' save/load. */
typedef struct rs_wbuf_s {
    uint8_t *p;
    size_t len, cap;
} rs_wbuf_t;

void rs_wb_put(rs_wbuf_t *b, const void *src, size_t n);
void rs_wb_u64(rs_wbuf_t *b, uint64_t v);
void rs_wb_u32(rs_wbuf_t *b, uint32_t v);
void rs_wb_f64(rs_wbuf_t *b, double v);
void rs_wb_str(rs_wbuf_t *b, const char *s);

typedef struct rs_rbuf_s {
    const uint8_t *p;
    size_t len, off;
    int bad;
} rs_rbuf_t;

const uint8_t *rs_rb_take(rs_rbuf_t *b, size_t n);
uint64_t rs_rb_u64(rs_rbuf_t *b);
uint32_t rs_rb_u32(rs_rbuf_t *b);
double rs_rb_f64(rs_rbuf_t *b);
void rs_rb_str(rs_rbuf_t *b, char *dst, size_t max);

#endif /* RS_MODEL_INT_H */
