/* sched.h — the learning-rate schedule flags shared by the examples (--sched, --lr-min,
 * and for "step" a decay factor and period) turned into a node_sched for a run of a
 * given length; the library's node_optim_schedule then applies it every iteration.
 */
#ifndef EX_SCHED_H
#define EX_SCHED_H

#include <libnode.h>
#include <stddef.h>

/* The schedule named name for a run of iters iterations from the base rate lr:
     "constant"  lr throughout;
     "cosine"    lr down to lr_min over the iters iterations (cosine annealing);
     "step"      lr · gamma every step_size iterations (0: a third of the run).
   0 and *out set; −1 with why (a message naming the flag, for ex_args_fail) filled
   for an unknown name or a value out of range (lr_min outside [0, lr], gamma < 0,
   step_size < 0). */
int ex_sched_make(const char *name, double lr, double lr_min, long step_size, double gamma,
                  long iters, node_sched *out, char *why, size_t why_size);

#endif /* EX_SCHED_H */
