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

#endif /* RS_MODEL_INT_H */
