/* libnode/train.h — losses, optimizers and learning-rate schedules over flat
 * parameter vectors.  Include <libnode.h> rather than this file.
 */
#ifndef LIBNODE_TRAIN_H
#define LIBNODE_TRAIN_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* (filled in by the training module) */

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_TRAIN_H */
