/* libnode.h — the public surface of libnode, a C99 library for neural ordinary
 * differential equations (Chen, Rubanova, Bettencourt, Duvenaud, NeurIPS 2018).
 *
 * This umbrella header is all a program includes; the modules below can also be
 * read on their own.  Every public name starts with node_ / NODE_.
 */
#ifndef LIBNODE_H
#define LIBNODE_H

#include "libnode/core.h"   /* status codes, node_system, node_odeint, node_solver */
#include "libnode/grad.h"   /* adjoint and exact backprop gradients */
#include "libnode/mlp.h"    /* the MLP dynamics module */
#include "libnode/train.h"  /* losses, optimizers, schedules */
#include "libnode/seq.h"    /* time series: RNG, likelihoods, recurrent cells, data sets, latent ODE */
#include "libnode/cnf.h"    /* continuous normalizing flows: divergence products, log-densities, sampling, planar flows */
#include "libnode/net.h"    /* layers, networks as dynamics or stages, softmax cross-entropy, network files */
#include "libnode/event.h"  /* events: integrate until g(t, y) crosses zero; gradients through the event time */
#include "libnode/ensemble.h" /* ensembles: many samples, each with its own steps and status, in one call */

#endif /* LIBNODE_H */
